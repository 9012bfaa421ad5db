"""No request header of an ordinary client changes the URLs that the server sends to others (or to it)."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.asyncio.client import connect

from tests.live_server import Server, embedded_configuration, running_server

EVIL = "https://evil.example/"
URL_FIELDS = ("url", "original_url", "detail_url")

# Each header a client could try to steer the URLs with; none of them may (PROXY_HEADERS is off).
HOSTILE_HEADERS = {
    "Daphne-Root-Path": EVIL,
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "444",
    "X-Forwarded-For": "203.0.113.9",
    "Forwarded": "for=203.0.113.9;host=evil.example;proto=https",
    "X-Script-Name": "/evil",
    "X-Original-Host": "evil.example",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("headers")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as running:
        yield running


def assert_urls_start_with(payload: dict, base_url: str) -> None:
    for field in URL_FIELDS:
        assert payload[field].startswith(base_url + "/"), (field, payload[field])


async def upload_while_listening(
    http: requests.Session, server: Server, photo: bytes, listener_url: str, **headers: str
) -> tuple:
    """The upload's answer, and the message a /faces client on `listener_url` got for it."""
    async with connect(listener_url, proxy=None) as listener:
        response = await asyncio.to_thread(
            http.post, server.base_url + "/image", files={"image": photo}, headers=headers, timeout=30
        )
        assert response.status_code == 201, response.text
        while (message := json.loads(await asyncio.wait_for(listener.recv(), 10)))["id"] != response.json()["id"]:
            pass
    return response, message


@pytest.mark.parametrize(("header", "value"), HOSTILE_HEADERS.items())
async def test_a_header_changes_no_url_in_the_answer_or_the_broadcast(server, coffee_png, http, header, value):
    response, message = await upload_while_listening(http, server, coffee_png, server.ws_url, **{header: value})
    detail = http.get(response.headers["Location"], headers={header: value}, timeout=10)
    listing = http.get(server.base_url + "/image", headers={header: value}, timeout=10)

    assert response.headers["Location"] == f"{server.base_url}/image/{response.json()['id']}"
    for payload in (response.json(), message, detail.json(), listing.json()["results"][0]):
        assert_urls_start_with(payload, server.base_url)


async def test_each_listener_gets_urls_for_the_host_it_used_not_the_uploaders(server, coffee_png, http):
    listener_base = f"http://localhost:{server.port}"

    response, message = await upload_while_listening(
        http, server, coffee_png, f"ws://localhost:{server.port}/faces", Host=f"127.0.0.1:{server.port}"
    )

    assert_urls_start_with(response.json(), server.base_url)
    assert_urls_start_with(message, listener_base)


async def test_the_websockets_own_headers_do_not_steer_its_urls(server, coffee_png, http):
    async with connect(server.ws_url, proxy=None, additional_headers={"Daphne-Root-Path": EVIL}) as listener:
        body = (
            await asyncio.to_thread(http.post, server.base_url + "/image", files={"image": coffee_png}, timeout=30)
        ).json()
        while (message := json.loads(await asyncio.wait_for(listener.recv(), 10)))["id"] != body["id"]:
            pass

    assert_urls_start_with(message, server.base_url)


async def test_behind_a_trusted_proxy_the_forwarded_scheme_reaches_only_the_uploaders_own_answer(
    tmp_path, coffee_png, http
):
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, "PROXY_HEADERS": "true"}) as proxied,
    ):
        response, message = await upload_while_listening(
            http,
            proxied,
            coffee_png,
            proxied.ws_url,
            **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
        )

    assert_urls_start_with(response.json(), f"https://127.0.0.1:{proxied.port}")  # what the proxy said
    assert_urls_start_with(message, proxied.base_url)  # the listener's own connection
