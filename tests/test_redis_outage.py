"""With Redis down, uploads are still stored and answered; when it is back, broadcasts resume."""

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis.asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from detection.models import Detection
from facesite.asgi import application
from facesite.layers import channel_layers
from tests.live_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


class RedisServer:
    """A Redis of our own, on a port of our own, that the test can stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(settings) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("no redis-server on this machine")
    server = RedisServer(free_port())
    server.start()
    settings.CHANNEL_LAYERS = channel_layers(f"redis://127.0.0.1:{server.port}/0")
    yield server
    server.stop()


async def rejoined(server: RedisServer) -> None:
    """Wait (up to 10 s) for this process's relay to be back in the faces group."""
    connection = redis.asyncio.Redis(port=server.port)
    async with asyncio.timeout(10):
        while not await connection.exists("asgi:group:faces"):
            await asyncio.sleep(0.1)
    await connection.aclose()


@sync_to_async
def upload(content: bytes):
    return APIClient().post("/image", {"image": SimpleUploadedFile("p", content)}, format="multipart")


async def test_uploads_survive_a_redis_outage_and_broadcasts_resume(redis_server, coffee_png, caplog):
    # Connected before the outage: this process's membership of the group must come back with Redis.
    before = WebsocketCommunicator(application, "/faces", headers=[(b"host", b"testserver")])
    assert (await before.connect(timeout=5))[0]
    redis_server.stop()

    with caplog.at_level(logging.ERROR, logger="detection.broadcast"):
        during = await upload(coffee_png)

    assert during.status_code == 201
    detection_id = during.json()["id"]
    assert await Detection.objects.filter(id=detection_id).aexists()
    assert f"broadcast of detection {detection_id} failed" in caplog.text
    readiness = await sync_to_async(APIClient().get)("/readyz")
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["channel_layer"].startswith("error:")

    redis_server.start()  # the same address, empty: the layer reconnects, the relay joins again
    await rejoined(redis_server)
    client = WebsocketCommunicator(application, "/faces", headers=[(b"host", b"testserver")])
    assert (await client.connect(timeout=5))[0]
    after = (await upload(coffee_png)).json()

    assert (await client.receive_json_from(timeout=5))["id"] == after["id"]
    assert (await before.receive_json_from(timeout=5))["id"] == after["id"]
    assert (await sync_to_async(APIClient().get)("/readyz")).status_code == 200
    await client.disconnect()
    await before.disconnect()
