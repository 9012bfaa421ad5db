"""A websocket client that never reads is disconnected before it can grow the server's memory,
and the clients that do read get every message meanwhile."""

import asyncio
import json
import os
import socket
from pathlib import Path

from channels_redis.core import RedisChannelLayer
from websockets.asyncio.client import connect

from detection.broadcast import faces_message
from tests.live_server import closed_by_server, embedded_configuration, raw_websocket, running_server

PADDING = 64_000  # bytes a message
BUFFER_LIMIT = 65_536  # WEBSOCKET_MAX_BUFFER_BYTES
# The kernel holds up to tcp_wmem's maximum of unsent bytes per socket before the server has to:
# send more than that and the limit, so a client that never reads must be dropped.
KERNEL_SEND_BUFFER = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
MESSAGES = (KERNEL_SEND_BUFFER + 4 * BUFFER_LIMIT) // PADDING + 10


def never_reading_client(port: int) -> socket.socket:
    """A websocket handshake, then silence: a tiny receive window that fills and is never emptied."""
    return raw_websocket(port, receive_buffer=4096)


def fake_detection(number: int) -> dict:
    path = f"/media/detections/fake/{number}.jpg"
    return {
        "type": "detection.created",
        "id": str(number),
        "url": path,
        "original_url": path,
        "detail_url": path,
        "padding": "x" * PADDING,
    }


async def test_a_client_that_never_reads_is_dropped_and_others_get_everything(tmp_path, redis_url):
    prefix = f"slow-{os.getpid()}"
    limits = {"REDIS_URL": redis_url, "CHANNEL_LAYER_PREFIX": prefix, "WEBSOCKET_MAX_BUFFER_BYTES": str(BUFFER_LIMIT)}
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)

    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **limits}) as server,
    ):
        silent = never_reading_client(server.port)
        async with connect(server.ws_url, proxy=None, max_size=None) as reader:
            await asyncio.sleep(0.5)  # both sockets are in the group
            for number in range(MESSAGES):
                await layer.group_send("faces", faces_message(fake_detection(number)))
                await asyncio.sleep(0.002)  # under the layer's per-channel capacity
            received = [json.loads(await asyncio.wait_for(reader.recv(), 10))["id"] for _ in range(MESSAGES)]
        # The server closed the silent client's connection (a log line alone would not do).
        dropped = closed_by_server(silent, within=10)
        silent.close()
        output = server.output()

    assert received == [str(number) for number in range(MESSAGES)]
    assert dropped, "the server kept the connection of a client that does not read"
    assert "websocket client not reading: disconnected" in output
