"""Slow clients cannot hold the server: a request's headers and body have deadlines (408), one address
holds at most MAX_CONNECTIONS_PER_CLIENT connections (HTTP and websockets together; others are
unaffected), and SIGTERM does not wait for requests whose body is still arriving."""

import json
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from tests.live_server import (
    HOST,
    Server,
    closed_by_server,
    embedded_configuration,
    raw_websocket,
    read_response,
    running_server,
    wait_for,
)

SLOW = {"HTTP_HEADERS_TIMEOUT": "1", "HTTP_BODY_TIMEOUT": "2", "MAX_CONNECTIONS_PER_CLIENT": "6"}
OTHER_CLIENT = "127.0.0.2"  # another address on the loopback interface, for "everyone else"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("slow")
    with embedded_configuration(root) as configuration, running_server(root, {**configuration, **SLOW}) as server:
        yield server


def connection(server: Server, source: str = HOST) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((HOST, server.port))
    return sock


def healthz_answered(server: Server) -> bool:
    with connection(server) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return read_response(sock, timeout=5)[0] == 200
        except (AssertionError, OSError):  # closed unanswered: still over the cap
            return False


def trickle(sock: socket.socket, data: bytes, every: float, seconds: float) -> float:
    """Sends `data` a byte at a time until the server answers or `seconds` pass; when it answered."""
    started = time.monotonic()
    sock.setblocking(False)
    for byte in data:
        if time.monotonic() - started > seconds:
            break
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break
        except BlockingIOError:
            pass
        sock.send(bytes([byte]))
        time.sleep(every)
    return time.monotonic() - started


HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n"
BODY_HEAD = b"POST /image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n"


@pytest.mark.parametrize(
    ("sent_at_once", "trickled", "deadline"),
    [(b"", HEADERS, 1), (BODY_HEAD + b"\r\n", b"x" * 500, 2)],
    ids=["headers", "body"],
)
def test_a_trickling_request_gets_408_at_its_deadline(server, sent_at_once, trickled, deadline):
    with connection(server) as sock:
        sock.sendall(sent_at_once)
        answered_after = trickle(sock, trickled, every=0.2, seconds=deadline + 5)
        status, _, body = read_response(sock, timeout=5)
        closed = closed_by_server(sock, within=deadline + 5)

    assert status == 408
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert deadline - 0.5 < answered_after < deadline + 3
    assert closed


def test_one_address_holds_at_most_its_cap_and_others_are_unaffected(server):
    websockets = [raw_websocket(server.port) for _ in range(3)]
    idle = [connection(server) for _ in range(3)]
    refused = connection(server)  # the seventh, HTTP or websocket alike
    refused_websocket = socket.create_connection((HOST, server.port))
    other = connection(server, source=OTHER_CLIENT)
    other.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        assert closed_by_server(refused, within=5)
        assert closed_by_server(refused_websocket, within=5)
        assert read_response(other, timeout=5)[0] == 200
        websockets[0].close()
        wait_for(lambda: healthz_answered(server), 10, "connection accepted once one closed")
    finally:
        for sock in [*websockets, *idle, refused, refused_websocket, other]:
            sock.close()
    output = server.output()
    assert '"message": "refusing connections"' in output and '"client": "127.0.0.1"' in output


def test_sigterm_does_not_wait_for_a_request_whose_body_is_still_arriving(tmp_path):
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, configuration) as server,
        connection(server) as sock,
    ):
        sock.sendall(BODY_HEAD + b"Expect: 100-continue\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"HTTP/1.1 100")  # the server has the request's head
        sock.sendall(b"x" * 400)  # and 400 of its 500 bytes
        server.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        exit_code = server.process.wait(timeout=40)
        stopped_after = time.monotonic() - started

    assert exit_code == 0
    assert stopped_after < 5, f"waited {stopped_after:.1f} s for a request the application never had"
    assert "waiting for 0 request(s) in flight" in server.output()
