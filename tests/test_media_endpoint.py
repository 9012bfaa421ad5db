"""GET/HEAD /media/<path>: the stored images, served by the app itself (also with DEBUG off, as the
live server runs: tests/test_live_server.py)."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

pytestmark = pytest.mark.django_db


@pytest.fixture
def detection(coffee_png) -> dict:
    client = Client()
    return client.post("/image", {"image": SimpleUploadedFile("coffee.png", coffee_png)}).json()


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_it_serves_the_annotated_image(detection):
    response = Client().get(path_of(detection["url"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert image.format == "JPEG"
    assert image.size == (detection["width"], detection["height"])


def test_it_serves_the_original_with_its_own_type(detection, coffee_png):
    response = Client().get(path_of(detection["original_url"]))

    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == coffee_png


def test_it_lets_clients_cache_the_images(detection):
    response = Client().get(path_of(detection["url"]))

    assert "immutable" in response["Cache-Control"]
    assert "max-age=31536000" in response["Cache-Control"]
    assert response["ETag"].startswith('"')
    assert response["Last-Modified"].endswith("GMT")


def test_it_answers_not_modified_to_a_matching_etag(detection):
    client = Client()
    etag = client.get(path_of(detection["url"]))["ETag"]

    response = client.get(path_of(detection["url"]), headers={"If-None-Match": etag})

    assert response.status_code == 304


def test_it_answers_head_without_a_body(detection):
    response = Client().head(path_of(detection["url"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == b""


@pytest.mark.parametrize(
    "path",
    ["/media/detections/nothing.jpg", "/media/../../etc/passwd", "/media/%2e%2e/settings.py", "/media/detections"],
)
def test_it_answers_404_outside_the_stored_files(detection, path):
    response = Client().get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_it_refuses_to_change_files(detection):
    response = Client().delete(path_of(detection["url"]))

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
