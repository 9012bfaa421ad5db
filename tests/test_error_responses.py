"""Odd but harmless requests against the live server: every route with every method and Accept
header, odd bytes in paths, a disallowed Host, websocket upgrades on every path. Each gets a clear
4xx, JSON wherever the application answers, never a 500 or a traceback in the log."""

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.live_server import HOST, Server, embedded_configuration, running_server

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]
ACCEPTS = ["*/*", "application/json", "text/html", "application/yaml", "image/png"]
# Every route of facesite.urls (and the static files WhiteNoise serves), with something real behind
# the ones that take a path.
ROUTES = [
    "/",
    "/image",
    "/image/00000000-0000-0000-0000-000000000000",
    "/media/detections/no/such/annotated.jpg",
    "/healthz",
    "/readyz",
    "/api/schema/",
    "/api/docs/",
    "/admin/",
    "/admin/login/",
    "/admin/detection/detection/",
    "/favicon.ico",
    "/static/detection/favicon.svg",
    "/no/such/page",
]
# Percent-encoded bytes that reach the application's code: NUL, invalid UTF-8, traversal, controls.
ODD_SUFFIXES = ["%00", "a%00b.jpg", "%ff", "%c0%af", "%2e%2e/%2e%2e/etc/passwd", "..%5c..%5c", "%0d%0a", "%25%", "~"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("errors")
    # Rate limits off: hundreds of requests must reach the code behind them, not a 429.
    unthrottled = {"THROTTLE_UPLOADS": "", "THROTTLE_READS": ""}
    with embedded_configuration(root) as configuration, running_server(root, {**configuration, **unthrottled}) as live:
        yield live


def problem(response: requests.Response) -> str | None:
    """What is wrong with an answer to an odd request, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:200]}"
    if response.status_code < 400:
        return None
    if response.headers.get("Content-Type") != "application/json":
        return f"{response.status_code} as {response.headers.get('Content-Type')!r}: {response.text[:80]!r}"
    if response.request.method != "HEAD":
        error = response.json()["error"]
        if not (error["code"] and error["message"]):
            return f"{response.status_code} with an empty error: {error}"
    return None


def test_every_route_method_and_accept_header_gets_json_errors(server: Server, http: requests.Session) -> None:
    logged_before = len(server.output())
    problems = []
    for path in ROUTES:
        for method in METHODS:
            for accept in ACCEPTS:
                response = http.request(
                    method, server.base_url + path, headers={"Accept": accept}, allow_redirects=False, timeout=30
                )
                if issue := problem(response):
                    problems.append(f"{method} {path} (Accept: {accept}): {issue}")

    assert problems == [], "\n".join(problems)
    assert "Traceback" not in server.output()[logged_before:]


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/schema/"), ("OPTIONS", "/api/docs/"), ("TRACE", "/"), ("DELETE", "/static/detection/favicon.svg")],
)
def test_a_method_a_route_lacks_is_a_json_405_with_allow(
    server: Server, http: requests.Session, method: str, path: str
) -> None:
    response = http.request(method, server.base_url + path, timeout=10)

    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert method not in response.headers["Allow"]


def test_odd_bytes_in_paths_get_a_json_4xx(server: Server, http: requests.Session) -> None:
    logged_before = len(server.output())
    problems = []
    for route in ROUTES:
        for suffix in ODD_SUFFIXES:
            for method in ("GET", "POST", "OPTIONS"):
                target = route.rstrip("/") + "/" + suffix
                # Prepared by hand: requests would re-quote the percent signs.
                request = requests.Request(method, server.base_url + "/").prepare()
                request.url = server.base_url + target
                response = http.send(request, allow_redirects=False, timeout=30)
                if issue := problem(response):
                    problems.append(f"{method} {target}: {issue}")

    assert problems == [], "\n".join(problems)
    assert "Traceback" not in server.output()[logged_before:]


def test_a_nul_byte_in_a_media_path_is_a_404(server: Server, http: requests.Session) -> None:
    request = requests.Request("GET", server.base_url + "/").prepare()
    request.url = server.base_url + "/media/detections/a%00b.jpg"

    response = http.send(request, timeout=10)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def raw_status_line(server: Server, target: bytes) -> bytes:
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n\r\n")
        return sock.makefile("rb").readline()


@pytest.mark.parametrize("target", [b"/\x80abc", b"/media/\xff", b"/image?after=\xe9"])
def test_raw_non_ascii_bytes_in_the_request_line_are_refused_by_the_http_layer(server: Server, target: bytes) -> None:
    # Daphne refuses these before the application sees them (README: what the HTTP layer answers).
    assert raw_status_line(server, target).startswith(b"HTTP/1.1 400")


# Requests Django calls suspicious: any client can send them, so each must cost one log line, not an
# ERROR with a traceback.
SUSPICIOUS_REQUESTS = {
    "a Host not allowed": {"method": "GET", "url": "/image", "headers": {"Host": "evil.example"}},
    "too many form fields": {"method": "POST", "url": "/image", "data": {f"field{n}": "x" for n in range(1100)}},
    "too many files": {"method": "POST", "url": "/image", "files": [("image", (f"{n}.jpg", b"x")) for n in range(120)]},
}


@pytest.mark.parametrize("request_options", SUSPICIOUS_REQUESTS.values(), ids=SUSPICIOUS_REQUESTS.keys())
def test_a_suspicious_request_gets_a_json_400_and_no_error_in_the_log(
    server: Server, http: requests.Session, request_options: dict
) -> None:
    logged_before = len(server.output())
    options = {**request_options, "url": server.base_url + request_options["url"]}
    response = http.request(**options, timeout=10)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "bad_request"
    deadline = time.monotonic() + 10
    while '"status": 400' not in server.output()[logged_before:] and time.monotonic() < deadline:
        time.sleep(0.05)  # the request line is written once the answer has gone
    logged = [json.loads(line) for line in server.output()[logged_before:].splitlines()]
    assert ("request", 400) in [(line["message"], line.get("status")) for line in logged]
    assert all(line["level"] != "ERROR" and "exception" not in line for line in logged)


def test_the_server_runs_without_debug(server: Server, http: requests.Session) -> None:
    # With DEBUG on, Django answers an unknown path with its HTML debug page instead of handler404.
    response = http.get(server.base_url + "/no/such/page", timeout=10)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


async def handshake_status(server: Server, path: str) -> int:
    try:
        async with connect(f"ws://{HOST}:{server.port}{path}", proxy=None, open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_a_websocket_upgrade_on_any_path_but_faces_is_refused_without_a_traceback(server: Server) -> None:
    paths = [*ROUTES, "/faces/more", "/faces%00", "/%00", "/a%ffb"]
    logged_before = len(server.output())

    statuses = {path: await handshake_status(server, path) for path in paths}

    assert statuses == dict.fromkeys(paths, 403)
    assert await handshake_status(server, "/faces") == 101
    assert "Traceback" not in server.output()[logged_before:]
