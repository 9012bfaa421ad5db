"""Every supported format uploaded over HTTP to the real server: the faces found, the original
stored byte for byte under its own extension and served back with its own Content-Type."""

import pytest
from PIL import Image

from tests.conftest import encode
from tests.live_server import embedded_configuration, running_server

# Pillow format, save options, stored extension, Content-Type served.
FORMATS = {
    "JPEG": ({"quality": 92}, "jpg", "image/jpeg"),
    "PNG": ({}, "png", "image/png"),
    "WEBP": ({"quality": 90}, "webp", "image/webp"),
    "AVIF": ({"quality": 80}, "avif", "image/avif"),
    "HEIF": ({"quality": 80}, "heic", "image/heic"),
    "BMP": ({}, "bmp", "image/bmp"),
    "TIFF": ({}, "tiff", "image/tiff"),
    "GIF": ({}, "gif", "image/gif"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as server:
        yield server


def assert_stored_and_served(http, server, content: bytes, extension: str, content_type: str) -> dict:
    response = http.post(server.base_url + "/image", files={"image": ("photo", content)}, timeout=60)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["face_count"] == 1
    assert body["original_url"].endswith(f"/original.{extension}")
    original = http.get(body["original_url"], timeout=10)
    assert original.status_code == 200
    assert original.headers["Content-Type"] == content_type
    assert original.content == content
    return body


@pytest.mark.parametrize("image_format", list(FORMATS))
def test_each_format_is_stored_and_served_with_its_own_type(server, http, astronaut, image_format):
    options, extension, content_type = FORMATS[image_format]
    image = astronaut.convert("P") if image_format == "GIF" else astronaut

    assert_stored_and_served(http, server, encode(image, image_format, **options), extension, content_type)


def test_a_jpeg_with_more_pictures_is_a_jpeg(server, http, astronaut):
    # Phones and 3D cameras write MPO: a JPEG followed by more pictures, which Pillow names apart.
    mpo = encode(astronaut, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 64))])

    body = assert_stored_and_served(http, server, mpo, "jpg", "image/jpeg")

    assert (body["width"], body["height"]) == (512, 512)
