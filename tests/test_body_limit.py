"""Bodies over the limit are refused by the transport, before Django and before they are held in memory:
a declared Content-Length before any of the body is sent, a chunked body as soon as it passes the limit.
The server's peak memory is measured while the bodies arrive (tests/live_server.memory_kib)."""

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.live_server import HOST, Server, embedded_configuration, memory_kib, read_response, running_server

MIB = 1024 * 1024
LIMIT = 20 * MIB  # MAX_UPLOAD_BYTES's default
HEAD = "POST /image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("body-limit")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as server:
        yield server


@pytest.mark.parametrize(
    "extra_headers",
    [
        "Content-Length: 524288000\r\n",
        f"Content-Length: {LIMIT + 64 * 1024 + 1}\r\n",
        "Content-Length: 524288000\r\nExpect: 100-continue\r\n",
    ],
    ids=["500 MiB", "one byte over", "expecting 100-continue"],
)
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(server, extra_headers):
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall((HEAD + extra_headers + "\r\n").encode())  # and not a byte of the body
        status, headers, body = read_response(sock, timeout=5)

    assert status == 413  # not "100 Continue": the client is told before it sends anything
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "image_too_large"


def test_a_chunked_body_is_refused_once_past_the_limit_and_never_held_in_memory(server):
    chunk = b"x" * (256 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    peak_before = memory_kib(server.process.pid, "VmHWM")
    sent = 0
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall((HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode())
        deadline = time.monotonic() + 60
        # Up to 300 MiB, until the server answers (or stops reading and resets the connection).
        while sent < 300 * MIB and time.monotonic() < deadline:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, _, body = read_response(sock, timeout=10)
    peak_growth = (memory_kib(server.process.pid, "VmHWM") - peak_before) * 1024

    assert status == 413
    assert json.loads(body)["error"]["code"] == "image_too_large"
    assert sent < 40 * MIB, f"the server let {sent / MIB:.0f} MiB in before answering"
    # Twisted spools a large body to a temporary file: the process grows by far less than the limit.
    assert peak_growth < LIMIT, f"peak RSS grew by {peak_growth / MIB:.0f} MiB"


def test_a_chunked_upload_under_the_limit_still_works(server, astronaut_jpeg):
    boundary = "x"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + astronaut_jpeg
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in (body[:1000], body[1000:]))
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall((HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n")
        status, _, response = read_response(sock, timeout=30)

    assert status == 201, response
    assert len(json.loads(response)["faces"]) >= 1


VIDEO_HEAD = "POST /video HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"


def test_a_video_may_be_larger_than_a_photo_but_not_past_max_video_bytes(server):
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall((VIDEO_HEAD + f"Content-Length: {500 * MIB + 64 * 1024 + 1}\r\n\r\n").encode())
        status, _, body = read_response(sock, timeout=5)

    assert status == 413
    error = json.loads(body)["error"]
    assert error["code"] == "video_too_large"
    assert str(500 * MIB) in error["message"]


def test_a_large_video_body_reaches_the_application_from_disk_not_memory(server):
    # 120 MiB: six times the photo limit. Daphne alone would queue all of it in memory for Django.
    size = 120 * MIB
    block = bytes(range(256)) * 4096  # 1 MiB of a non-video
    peak_before = memory_kib(server.process.pid, "VmHWM")
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall((VIDEO_HEAD + f"Content-Length: {size}\r\n\r\n").encode())
        for _ in range(size // len(block)):
            sock.sendall(block)
        status, _, body = read_response(sock, timeout=60)
    peak_growth = (memory_kib(server.process.pid, "VmHWM") - peak_before) * 1024

    assert status == 415, body  # read whole, judged from its bytes
    assert json.loads(body)["error"]["code"] == "unsupported_video_format"
    assert peak_growth < 32 * MIB, f"peak RSS grew by {peak_growth / MIB:.0f} MiB"
