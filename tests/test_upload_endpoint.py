"""POST /image."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from detection.models import Detection
from tests.conftest import ASTRONAUT_FACE, encode, overlap, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def upload(client: APIClient, content: bytes, name: str = "photo.jpg", **fields: object):
    return client.post("/image", {"image": SimpleUploadedFile(name, content), **fields}, format="multipart")


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert len(body["error"]["message"]) > 10


def test_it_answers_with_the_faces_and_urls(client, astronaut_jpeg):
    response = upload(client, astronaut_jpeg)

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["error"]) == ("done", None)
    detection_id = uuid.UUID(body["id"])
    assert (
        body["url"]
        == f"http://testserver/media/detections/{Detection.objects.get().created_at:%Y/%m/%d}/{detection_id}/annotated.jpg"
    )
    assert body["original_url"].endswith(f"/{detection_id}/original.jpg")
    assert body["detail_url"] == f"http://testserver/image/{detection_id}"
    assert response["Location"] == body["detail_url"]
    assert (body["width"], body["height"], body["face_count"]) == (512, 512, 1)
    face = body["faces"][0]
    assert set(face) == {"box", "confidence", "landmarks"}
    assert overlap(face["box"], ASTRONAUT_FACE) > 0.6
    assert all(isinstance(value, int) for value in face["box"].values())
    assert 0 < face["confidence"] <= 1
    assert body["detector"] == {"name": "yunet", "version": "2023mar", "profile": "balanced"}
    assert body["annotate"] == "box"
    assert body["created_at"].endswith("Z")


def test_it_stores_the_original_and_the_annotated_copy(client, astronaut_jpeg, media_root):
    body = upload(client, astronaut_jpeg, name="../../etc/evil name.jpg").json()

    detection = Detection.objects.get(id=body["id"])
    assert detection.original.read() == astronaut_jpeg
    assert Image.open(detection.annotated).size == (512, 512)
    assert detection.faces == body["faces"]
    assert detection.processing_ms > 0
    # The client's file name never becomes a path.
    assert [path.name for path in stored_files(media_root)] == ["annotated.jpg", "original.jpg"]


def test_it_stores_a_photo_without_faces(client, coffee_png):
    response = upload(client, coffee_png, name="coffee.png")

    assert response.status_code == 201
    body = response.json()
    assert (body["face_count"], body["faces"]) == (0, [])
    assert body["original_url"].endswith("/original.png")


def test_it_accepts_a_raw_image_body(client, astronaut_jpeg):
    response = client.post("/image?min_confidence=0.5", data=astronaut_jpeg, content_type="image/jpeg")

    assert response.status_code == 201
    assert response.json()["face_count"] == 1


def test_it_finds_faces_in_an_exif_rotated_photo(client, astronaut):
    # A phone photo: pixels stored sideways, with an EXIF tag saying how to turn them.
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = astronaut.crop((0, 0, 512, 400)).transpose(Image.Transpose.ROTATE_90)

    body = upload(client, encode(sideways, "JPEG", exif=exif)).json()

    assert (body["width"], body["height"]) == (512, 400)
    assert body["face_count"] == 1
    assert overlap(body["faces"][0]["box"], ASTRONAUT_FACE) > 0.6


def test_min_confidence_filters_faces(client, astronaut_jpeg):
    confidence = upload(client, astronaut_jpeg, min_confidence="0.5").json()["faces"][0]["confidence"]

    assert upload(client, astronaut_jpeg, min_confidence=str(confidence + 0.01)).json()["face_count"] == 0
    assert upload(client, astronaut_jpeg, min_confidence=str(confidence - 0.01)).json()["face_count"] == 1


def test_it_uses_the_configured_threshold_by_default(client, astronaut_jpeg, settings):
    settings.DETECTOR_MIN_CONFIDENCE = 0.999

    assert upload(client, astronaut_jpeg).json()["face_count"] == 0


@pytest.mark.parametrize("value", ["-0.1", "1.5", "high", "nan"])
def test_it_rejects_a_bad_min_confidence(client, astronaut_jpeg, value):
    assert_error(upload(client, astronaut_jpeg, min_confidence=value), 400, "invalid_parameter")


def test_it_rejects_a_request_without_an_image(client):
    assert_error(client.post("/image", {"photo": "nothing"}, format="multipart"), 400, "image_missing")


def test_it_rejects_an_empty_body(client):
    assert_error(client.post("/image", data=b"", content_type="image/jpeg"), 400, "image_missing")


def test_it_rejects_an_empty_file(client):
    assert_error(upload(client, b""), 400, "image_empty")


def test_it_rejects_a_text_file_named_like_a_photo(client):
    response = upload(client, b"definitely not a photo\n" * 20, name="photo.jpg")

    assert_error(response, 415, "unsupported_image_format")
    assert "JPEG, PNG, WebP, AVIF, HEIC, BMP, TIFF or GIF" in response.json()["error"]["message"]


def test_it_rejects_a_body_that_is_not_declared_an_image(client, astronaut_jpeg):
    assert_error(client.post("/image", data=astronaut_jpeg, content_type="text/plain"), 415, "unsupported_media_type")


def test_it_rejects_a_truncated_image(client, astronaut_jpeg):
    assert_error(upload(client, astronaut_jpeg[:5000]), 400, "corrupt_image")


def test_it_rejects_too_many_bytes(client, astronaut_jpeg, settings):
    settings.MAX_UPLOAD_BYTES = 10_000

    response = upload(client, astronaut_jpeg)

    assert_error(response, 413, "image_too_large")
    assert "10000 bytes" in response.json()["error"]["message"]
    assert_error(client.post("/image", data=astronaut_jpeg, content_type="image/jpeg"), 413, "image_too_large")


def test_it_rejects_too_many_pixels(client, astronaut_jpeg, settings):
    settings.MAX_IMAGE_PIXELS = 512 * 511

    assert_error(upload(client, astronaut_jpeg), 413, "image_too_large")


def test_it_rejects_other_methods(client):
    response = client.delete("/image")

    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_a_bad_request_changes_nothing(client, astronaut_jpeg, media_root, settings):
    settings.MAX_IMAGE_PIXELS = 100
    assert_error(upload(client, astronaut_jpeg), 413, "image_too_large")
    assert_error(upload(client, astronaut_jpeg[:5000]), 413, "image_too_large")  # the header is enough
    assert_error(upload(client, b"text"), 415, "unsupported_image_format")
    assert_error(upload(client, astronaut_jpeg, min_confidence="2"), 400, "invalid_parameter")
    settings.MAX_IMAGE_PIXELS = 512 * 512
    assert_error(upload(client, astronaut_jpeg[:5000]), 400, "corrupt_image")
    assert_error(upload(client, b""), 400, "image_empty")
    assert_error(client.post("/image", data=b"", content_type="image/jpeg"), 400, "image_missing")

    assert Detection.objects.count() == 0
    assert stored_files(media_root) == []
