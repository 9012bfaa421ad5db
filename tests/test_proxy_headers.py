"""PROXY_HEADERS=true (behind a proxy): the client address and scheme come from X-Forwarded-*, for
HTTP and websockets; the address is the one the proxy appended, not one the client wrote itself;
the per-address connection cap is left to the proxy (every connection comes from it). Without it,
those headers are ignored."""

import json
from collections.abc import Iterator

import pytest
import requests
from websockets.asyncio.client import connect

from tests.live_server import HOST, Server, embedded_configuration, raw_websocket, running_server

# What a client wrote (203.0.113.66), then what the proxy in front appended: the address it saw.
FORWARDED = {"X-Forwarded-For": "203.0.113.66, 203.0.113.9", "X-Forwarded-Proto": "https"}


def log_lines(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("proxied")
    settings = {"PROXY_HEADERS": "true", "MAX_CONNECTIONS_PER_CLIENT": "2"}
    with embedded_configuration(root) as configuration, running_server(root, {**configuration, **settings}) as server:
        yield server


def test_the_client_address_and_scheme_come_from_the_proxy(proxied, http, coffee_png):
    response = http.post(proxied.base_url + "/image", files={"image": coffee_png}, headers=FORWARDED)

    [line] = [line for line in log_lines(proxied) if line.get("path") == "/image" and line.get("method") == "POST"]
    assert response.status_code == 201
    assert line["client"] == "203.0.113.9"
    assert response.headers["Location"].startswith("https://")


async def test_a_websocket_client_address_comes_from_the_proxy(proxied):
    async with connect(proxied.ws_url, proxy=None, additional_headers=FORWARDED):
        pass

    connected = [line for line in log_lines(proxied) if line["message"] == "websocket connected"]
    assert [line["client"] for line in connected] == ["203.0.113.9"]


def test_the_per_address_cap_is_left_to_the_proxy(proxied, http):
    held = [raw_websocket(proxied.port) for _ in range(4)]  # twice MAX_CONNECTIONS_PER_CLIENT, all from the proxy
    try:
        assert http.get(proxied.base_url + "/healthz", timeout=5).status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_without_proxy_headers_the_forwarded_headers_are_ignored(tmp_path, coffee_png):
    session = requests.Session()
    session.trust_env = False
    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
        response = session.post(server.base_url + "/image", files={"image": coffee_png}, headers=FORWARDED)
        [line] = [line for line in log_lines(server) if line.get("path") == "/image" and line.get("method") == "POST"]

    assert response.status_code == 201
    assert line["client"] == HOST
    assert response.headers["Location"].startswith("http://")
