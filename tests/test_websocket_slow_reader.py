"""A websocket client that never reads is disconnected before it can grow the server's memory,
and the clients that do read get every message meanwhile."""

import asyncio
import base64
import json
import os
import socket
from pathlib import Path

from channels_redis.core import RedisChannelLayer
from websockets.asyncio.client import connect

from detection.broadcast import faces_message
from tests.live_server import HOST, embedded_configuration, running_server

PADDING = 64_000  # bytes a message
BUFFER_LIMIT = 65_536  # WEBSOCKET_MAX_BUFFER_BYTES
# The kernel holds up to tcp_wmem's maximum of unsent bytes per socket before the server has to:
# send more than that and the limit, so a client that never reads must be dropped.
KERNEL_SEND_BUFFER = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
MESSAGES = (KERNEL_SEND_BUFFER + 4 * BUFFER_LIMIT) // PADDING + 10


def never_reading_client(port: int) -> socket.socket:
    """A websocket handshake, then silence: a tiny receive window that fills and is never emptied."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((HOST, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /faces HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert sock.recv(1024).startswith(b"HTTP/1.1 101")
    return sock


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
        silent.close()
        output = server.output()

    assert received == [str(number) for number in range(MESSAGES)]
    assert "Dropping websocket client" in output and "not reading its messages" in output
