"""Oversized bodies are refused before Django reads them (facesite.limits.RequestBodyLimit)."""

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from facesite.asgi import application

pytestmark = pytest.mark.django_db


def http_scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/image",
        "raw_path": b"/image",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8282),
    }


async def response_of(communicator: ApplicationCommunicator) -> tuple[int, dict]:
    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    return start["status"], json.loads(body["body"])


async def test_a_declared_oversized_body_is_refused_before_it_is_read(settings):
    settings.MAX_UPLOAD_BYTES = 1000
    communicator = ApplicationCommunicator(
        application, http_scope([(b"content-type", b"image/jpeg"), (b"content-length", b"10000000")])
    )
    # Nothing of the body is sent: the answer must come from the headers alone.

    status, body = await response_of(communicator)

    assert status == 413
    assert body["error"]["code"] == "image_too_large"
    assert "1000 bytes" in body["error"]["message"]


async def test_a_streamed_body_is_cut_off_at_the_limit(settings):
    settings.MAX_UPLOAD_BYTES = 1000
    communicator = ApplicationCommunicator(application, http_scope([(b"content-type", b"image/jpeg")]))
    chunk = b"x" * 40_000
    for _ in range(3):  # 120 kB, past the limit plus the multipart allowance
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": True})
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})

    status, body = await response_of(communicator)

    assert status == 413
    assert body["error"]["code"] == "image_too_large"
