"""The cap on /faces sockets per client address holds however the handshakes arrive."""

import asyncio
from contextlib import AsyncExitStack

import pytest
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from facesite.asgi import application
from tests.live_server import embedded_configuration, running_server

CAP = 5
HANDSHAKES = 300


async def attempt(url: str) -> ClientConnection | int:
    """An open socket, or the status that refused the handshake."""
    try:
        return await connect(url, proxy=None, open_timeout=60)
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_handshakes_arriving_together_get_exactly_the_cap(tmp_path):
    with (
        embedded_configuration(tmp_path) as configuration,
        # The transport's cap on connections per address would close some handshakes unanswered first.
        running_server(
            tmp_path,
            {**configuration, "WEBSOCKET_MAX_PER_CLIENT": str(CAP), "MAX_CONNECTIONS_PER_CLIENT": str(2 * HANDSHAKES)},
        ) as server,
    ):
        async with AsyncExitStack() as sockets:
            outcomes = await asyncio.gather(*(attempt(server.ws_url) for _ in range(HANDSHAKES)))
            accepted = [outcome for outcome in outcomes if isinstance(outcome, ClientConnection)]
            for socket in accepted:
                sockets.push_async_callback(socket.close)

            assert len(accepted) == CAP
            assert sorted(set(outcomes) - set(accepted)) == [403]  # the others were refused, nothing else
            await accepted[0].close()
            replacement = await connect(server.ws_url, proxy=None, open_timeout=30)  # a closed socket frees its place
            sockets.push_async_callback(replacement.close)
            assert isinstance(await attempt(server.ws_url), int)  # and only that one


def client(**options: object) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/faces", headers=[(b"host", b"testserver")], **options)


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_refused_after_its_place_was_reserved_gives_the_place_back(settings):
    settings.WEBSOCKET_MAX_PER_CLIENT = 2
    settings.API_KEYS = ["the-key"]
    settings.API_KEYS_REQUIRED_FOR_READ = True

    refused = [(await client().connect(timeout=5))[0] for _ in range(5)]
    listeners = [client(subprotocols=["faces", "api-key.the-key"]) for _ in range(3)]
    accepted = [(await listener.connect(timeout=5))[0] for listener in listeners]

    assert refused == [False] * 5
    assert accepted == [True, True, False]
    for listener in listeners[:2]:
        await listener.disconnect()


def forwarded_client(forwarded_for: str) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver"), (b"x-forwarded-for", forwarded_for.encode())]
    return WebsocketCommunicator(application, "/faces", headers=headers)


@pytest.mark.django_db(transaction=True)  # Channels closes old database connections on each message
@pytest.mark.parametrize(("num_proxies", "expected"), [(1, [True, True, False]), (0, [True, False, False])])
async def test_behind_a_proxy_the_cap_counts_each_forwarded_client(settings, num_proxies, expected):
    settings.WEBSOCKET_MAX_PER_CLIENT = 1
    settings.NUM_PROXIES = num_proxies
    sockets = [forwarded_client(address) for address in ("192.0.2.1", "192.0.2.2", "198.51.100.1, 192.0.2.1")]

    accepted = [(await socket.connect(timeout=5))[0] for socket in sockets]

    assert accepted == expected  # without NUM_PROXIES the header is the client's word: ignored
    for socket, connected in zip(sockets, accepted, strict=True):
        if connected:
            await socket.disconnect()
