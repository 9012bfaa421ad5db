"""Daphne pings each quiet websocket client and drops one that stops answering (a dead peer, a
vanished network), while clients that answer stay. Short intervals via the settings."""

import asyncio
import time

from websockets.asyncio.client import connect

from tests.live_server import closed_by_server, embedded_configuration, raw_websocket, running_server

PINGS = {"WEBSOCKET_PING_INTERVAL": "1", "WEBSOCKET_PING_TIMEOUT": "1"}


async def test_a_client_that_stops_answering_pings_is_dropped_and_one_that_answers_stays(tmp_path, coffee_png, http):
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **PINGS}) as server,
    ):
        async with connect(server.ws_url, proxy=None, ping_interval=None) as answering:  # answers pings itself
            silent = raw_websocket(server.port)  # never reads, never answers
            started = time.monotonic()
            dropped = await asyncio.to_thread(closed_by_server, silent, 15)
            dropped_after = time.monotonic() - started
            silent.close()
            upload = await asyncio.to_thread(http.post, server.base_url + "/image", files={"image": coffee_png})
            heard = await asyncio.wait_for(answering.recv(), 10)

    assert dropped, "a client that never answers pings was kept"
    assert dropped_after < 10
    assert upload.json()["id"] in heard  # the answering client is still connected
