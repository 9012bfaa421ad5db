"""End-to-end: the real server, started by ./entrypoint.sh, driven over HTTP and websockets like a user would."""

import asyncio
import io
import json
import re
import resource
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
import yaml
from PIL import Image
from skimage import data
from websockets.asyncio.client import ClientConnection, connect

from tests.live_server import HOST, Server, docker_configuration, embedded_configuration, running_server

REPO_ROOT = Path(__file__).resolve().parent.parent
BROADCAST_SECONDS = 5

# Where the astronaut's face is in skimage's 512x512 photo, by eye, with some slack.
FACE_CENTRE_X = (170, 280)
FACE_CENTRE_Y = (55, 185)
FACE_WIDTH = (60, 160)


@dataclass(frozen=True)
class Photo:
    name: str
    content: bytes
    content_type: str
    size: tuple[int, int]  # width, height


def encode(pixels: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture(scope="module", params=[embedded_configuration, docker_configuration], ids=["embedded", "docker"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server as users start it, in the configuration of `make run` and of docker-compose.yml."""
    root = tmp_path_factory.mktemp("live_server")
    with request.param(root) as configuration, running_server(root, configuration) as running:
        yield running


@pytest.fixture(scope="module")
def face_photo() -> Photo:
    return Photo("astronaut.jpg", encode(data.astronaut(), "JPEG"), "image/jpeg", (512, 512))


@pytest.fixture(scope="module")
def faceless_photo() -> Photo:
    return Photo("coffee.png", encode(data.coffee(), "PNG"), "image/png", (600, 400))


def upload(http: requests.Session, server: Server, photo: Photo) -> dict:
    response = http.post(
        server.base_url + "/image", files={"image": (photo.name, photo.content, photo.content_type)}, timeout=30
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == body["detail_url"]
    return body


def detection_count(http: requests.Session, server: Server) -> int:
    response = http.get(server.base_url + "/image", params={"page_size": 100}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["count"]


def stored_files(server: Server) -> list[Path]:
    return sorted(path for path in server.media_root.rglob("*") if path.is_file())


def assert_on_the_astronauts_face(body: dict) -> None:
    assert body["face_count"] == 1
    assert len(body["faces"]) == 1
    box = body["faces"][0]["box"]
    centre_x = box["x"] + box["width"] / 2
    centre_y = box["y"] + box["height"] / 2
    assert FACE_CENTRE_X[0] <= centre_x <= FACE_CENTRE_X[1], box
    assert FACE_CENTRE_Y[0] <= centre_y <= FACE_CENTRE_Y[1], box
    assert FACE_WIDTH[0] <= box["width"] <= FACE_WIDTH[1], box


async def next_message(client: ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(client.recv(), timeout=BROADCAST_SECONDS))


def raw_request(server: Server, request_line: str) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers and body exactly as they come off the wire.

    HTTP clients never read a body after HEAD, so only a raw socket shows whether one was sent.
    """
    lines = [request_line, f"Host: {HOST}:{server.port}", "Connection: close"]
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    return status_line, response_headers, body


async def test_it_broadcasts_each_upload_to_every_client(
    server: Server, http: requests.Session, face_photo: Photo, faceless_photo: Photo
) -> None:
    # No Origin header, like a script; proxy=None for the same reason as the HTTP session.
    async with connect(server.ws_url, proxy=None) as first, connect(server.ws_url, proxy=None) as second:
        # One upload at a time: each broadcast must reach both clients before the next upload.
        for photo in (face_photo, faceless_photo):
            body = await asyncio.to_thread(upload, http, server, photo)

            for client in (first, second):
                message = await next_message(client)
                assert message["type"] == "detection.created"
                assert message["id"] == body["id"]
                assert message["url"] == body["url"]
                # The websocket carries the same detection as the REST API, URLs included.
                assert {key: value for key, value in message.items() if key != "type"} == body

            if photo is face_photo:
                assert_on_the_astronauts_face(body)
            else:
                assert body["face_count"] == 0
                assert body["faces"] == []


def test_it_serves_the_images_at_the_urls_it_returns(
    server: Server, http: requests.Session, face_photo: Photo, faceless_photo: Photo
) -> None:
    for photo in (face_photo, faceless_photo):
        body = upload(http, server, photo)
        # The annotated copy is always a JPEG; the original keeps the uploaded format.
        for url, content_type in ((body["url"], "image/jpeg"), (body["original_url"], photo.content_type)):
            response = http.get(url, timeout=10)
            assert response.status_code == 200, url
            assert response.headers["Content-Type"] == content_type
            with Image.open(io.BytesIO(response.content)) as image:
                image.load()  # decodes every pixel: a truncated file fails here
                assert image.size == photo.size
        assert http.get(body["original_url"], timeout=10).content == photo.content

        detail = http.get(body["detail_url"], timeout=10)
        assert detail.status_code == 200
        assert detail.json() == body


def test_it_answers_head_and_if_none_match_on_images(server: Server, http: requests.Session, face_photo: Photo) -> None:
    body = upload(http, server, face_photo)
    path = urlsplit(body["url"]).path
    full = http.get(body["url"], timeout=10)

    status_line, headers, head_body = raw_request(server, f"HEAD {path} HTTP/1.1")

    assert status_line.split()[1] == "200", status_line
    assert head_body == b""
    assert headers["etag"] == full.headers["ETag"]
    assert headers["content-type"] == "image/jpeg"

    cached = http.get(body["url"], headers={"If-None-Match": headers["etag"]}, timeout=10)
    assert cached.status_code == 304
    assert cached.content == b""


def attach(name: str, content: bytes, content_type: str) -> Callable[[Photo], dict]:
    return lambda photo: {"files": {"image": (name, content, content_type)}}


# id: method, path, what to send (given the face photo), status, error code.
BAD_REQUESTS: dict[str, tuple[str, str, Callable[[Photo], dict], int, str]] = {
    "no file": ("POST", "/image", lambda photo: {}, 400, "image_missing"),
    "zero-byte file": ("POST", "/image", attach("empty.jpg", b"", "image/jpeg"), 400, "image_empty"),
    "text file": (
        "POST",
        "/image",
        attach("notes.txt", b"hello\n" * 100, "text/plain"),
        415,
        "unsupported_image_format",
    ),
    "truncated jpeg": (
        "POST",
        "/image",
        lambda photo: {"files": {"image": ("cut.jpg", photo.content[:5000], "image/jpeg")}},
        400,
        "corrupt_image",
    ),
    "min_confidence 2": (
        "POST",
        "/image",
        # A valid photo, so only the parameter is wrong.
        lambda photo: {
            "files": {"image": (photo.name, photo.content, photo.content_type)},
            "data": {"min_confidence": "2"},
        },
        400,
        "invalid_parameter",
    ),
    "delete": ("DELETE", "/image", lambda photo: {}, 405, "method_not_allowed"),
    "unknown detection": ("GET", f"/image/{uuid.uuid4()}", lambda photo: {}, 404, "not_found"),
    "unknown path": ("GET", "/no/such/page", lambda photo: {}, 404, "not_found"),
    "unknown media file": ("GET", "/media/detections/no/such/annotated.jpg", lambda photo: {}, 404, "not_found"),
}


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code"),
    [pytest.param(*case, id=name) for name, case in BAD_REQUESTS.items()],
)
def test_it_answers_bad_requests_with_a_json_error(
    server: Server,
    http: requests.Session,
    face_photo: Photo,
    method: str,
    path: str,
    payload: Callable[[Photo], dict],
    status: int,
    code: str,
) -> None:
    count_before, files_before = detection_count(http, server), stored_files(server)

    response = http.request(method, server.base_url + path, timeout=30, **payload(face_photo))

    assert response.status_code == status, response.text
    # JSON, never Django's or Daphne's HTML error pages.
    assert response.headers["Content-Type"] == "application/json", response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["code"] == code
    # A refused request leaves nothing behind: no row, no file.
    assert detection_count(http, server) == count_before
    assert stored_files(server) == files_before


def test_it_serves_the_upload_page_and_its_assets(server: Server, http: requests.Session) -> None:
    response = http.get(server.base_url + "/", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert re.search(r'<form\b[^>]*enctype="multipart/form-data"', response.text)
    assert re.search(r'<input\b[^>]*\bname="image"[^>]*\btype="file"', response.text)
    # With DEBUG off, WhiteNoise serves what collectstatic gathered: the page must not load broken.
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', response.text)
    assert assets
    for asset in assets:
        assert http.get(server.base_url + asset, timeout=10).status_code == 200, asset


def test_it_serves_the_admin_login(server: Server, http: requests.Session) -> None:
    response = http.get(server.base_url + "/admin/login/", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")


def test_it_serves_the_api_schema_and_docs(server: Server, http: requests.Session) -> None:
    schema = http.get(server.base_url + "/api/schema/", timeout=10)
    docs = http.get(server.base_url + "/api/docs/", timeout=10)

    assert schema.status_code == 200
    # The upload endpoint is documented (drf-spectacular spells the optional slash of ^image/?$ as /image/).
    paths = yaml.safe_load(schema.text)["paths"]
    assert any(re.fullmatch(r"/image/?", path) and "post" in operations for path, operations in paths.items())
    assert docs.status_code == 200
    assert docs.headers["Content-Type"].startswith("text/html")


def test_it_is_ready(server: Server, http: requests.Session) -> None:
    response = http.get(server.base_url + "/readyz", timeout=30)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]
    assert all(outcome == "ok" for outcome in body["checks"].values()), body["checks"]


def open_file_limits(pid: int) -> tuple[int, int]:
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if "open files" in line)
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def test_it_lifts_its_open_file_limit_for_thousands_of_websockets(tmp_path):
    # As a shell often starts programs: a soft limit of 256 would refuse /faces clients past ~250.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
            limits = open_file_limits(server.process.pid)  # entrypoint.sh execs the server
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert limits == (hard, hard)
