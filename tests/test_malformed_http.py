"""HTTP framing the server cannot read gets the API's JSON error, not Twisted's empty 400 or Daphne's
HTML page, and is logged as a JSON request line. Raw sockets: no client library sends these."""

import json
import socket
from collections.abc import Iterator

import pytest

from tests.live_server import HOST, Server, embedded_configuration, read_response, running_server

HEAD = b"POST /image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
MALFORMED = {
    "content-length not a number": HEAD + b"Content-Length: abc\r\n\r\n",
    "negative content-length": HEAD + b"Content-Length: -1\r\n\r\n",
    "two content-lengths": HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "content-length and chunked": HEAD
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n",
    "unknown transfer-encoding": HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
    "chunk size not hex": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk without its CRLF": HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
    "request line of two words": b"GET /healthz\r\nHost: 127.0.0.1\r\n\r\n",
    "header without a colon": b"GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
    "space in a header name": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Name: x\r\n\r\n",
    "header line too long": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    "non-ASCII path": b"GET /h\xc3\xa9 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "non-ASCII query string": b"GET /healthz?q=\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("malformed")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as server:
        yield server


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_it_answers_malformed_framing_with_a_json_400(server, request_bytes):
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(request_bytes)
        status, headers, body = read_response(sock, timeout=10)

    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_it_logs_what_it_answers_itself_as_json_lines_without_query_strings(server):
    with socket.create_connection((HOST, server.port)) as sock:
        sock.sendall(b"POST /image?key=secret-in-query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n")
        status, _, _ = read_response(sock, timeout=10)

    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "facesite.requests" and line["status"] == 400]
    assert status == 400
    assert {"method": "POST", "path": "/image", "client": HOST} in [
        {key: line[key] for key in ("method", "path", "client")} for line in requests
    ]
    assert "secret-in-query" not in server.output()
