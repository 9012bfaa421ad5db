"""With Redis down, uploads are still stored and answered, rate limits fail open and new websockets are
accepted; when it is back, broadcasts resume and the limits count again."""

import asyncio
import logging
import re
import socket
import time
from collections.abc import Iterator

import pytest
import redis.asyncio
import requests
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from access import throttling
from access.throttling import CacheOutage
from detection.broadcast import BROADCAST_TIMEOUT_SECONDS
from detection.models import Detection
from facesite.asgi import application
from facesite.caches import caches
from facesite.layers import channel_layers
from facesite.task_backends import rq_queues, task_backends
from tests.conftest import RedisServer, stored_files
from tests.live_server import running_server

pytestmark = pytest.mark.django_db(transaction=True)


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


@pytest.fixture
def fresh_outage(monkeypatch) -> CacheOutage:
    """This test's own outage record, retried at once, so no outage outlives the test."""
    outage = CacheOutage()
    monkeypatch.setattr(throttling, "cache_outage", outage)
    monkeypatch.setattr(throttling, "CACHE_RETRY_SECONDS", 0)
    return outage


@pytest.fixture
def redis_cache(settings, redis_server, fresh_outage) -> RedisServer:
    """Rate limits counted in the test's own Redis, as with REDIS_URL set."""
    settings.CACHES = caches(f"redis://127.0.0.1:{redis_server.port}/0", timeout=0.5)
    settings.API_KEYS = ["the-key"]
    settings.THROTTLE_RATES = {"uploads": "100/min", "reads": "100/min"}
    return redis_server


def test_with_the_cache_down_every_request_is_answered_and_the_limits_fail_open(redis_cache, coffee_png, caplog):
    redis_cache.stop()
    client = APIClient(headers={"X-API-Key": "the-key"})

    with caplog.at_level(logging.WARNING, logger="access.throttling"):
        uploaded = client.post("/image", {"image": SimpleUploadedFile("p", coffee_png)}, format="multipart")
        listed = client.get("/image")
        detail = client.get(f"/image/{uploaded.json()['id']}")
        annotated = client.get(uploaded.json()["url"].removeprefix("http://testserver"))
        wrong_key = APIClient().get("/image", headers={"X-API-Key": "a-guess"})
        no_key = APIClient().post("/image", {"image": SimpleUploadedFile("p", coffee_png)}, format="multipart")
        outage_lines = caplog.text.count("rate limits are off")
        redis_cache.start()
        after = client.get("/image")

    assert (uploaded.status_code, listed.status_code, detail.status_code, annotated.status_code) == (201, 200, 200, 200)
    assert listed.json()["results"][0]["id"] == uploaded.json()["id"]
    assert (wrong_key.status_code, wrong_key.json()["error"]["code"]) == (401, "authentication_failed")
    assert (no_key.status_code, no_key.json()["error"]["code"]) == (401, "not_authenticated")
    assert outage_lines == 1  # once per outage, not once per request
    assert after.status_code == 200
    skipped = re.search(
        r"rate limits are back on after \d+ s without the cache; (\d+) check\(s\) went uncounted", caplog.text
    )
    assert int(skipped[1]) >= 5  # at least one for each request that was counted before the outage


def test_the_limits_count_again_once_the_cache_is_back(redis_cache, settings):
    settings.THROTTLE_RATES = {"uploads": "100/min", "reads": "2/min"}
    redis_cache.stop()
    during = [APIClient().get("/image").status_code for _ in range(4)]
    redis_cache.start()

    after = [APIClient().get("/image").status_code for _ in range(3)]

    assert during == [200] * 4
    assert after == [200, 200, 429]


@pytest.mark.timeout(30)
def test_a_cache_that_does_not_answer_does_not_hold_requests(settings, fresh_outage):
    # A Redis that accepts connections and never answers (a hung server, a dropped route).
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        settings.CACHES = caches(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout=0.5)
        started = time.monotonic()
        statuses = [APIClient().get("/image").status_code for _ in range(5)]
        elapsed = time.monotonic() - started

    assert statuses == [200] * 5
    assert elapsed < 5 * 0.5 * 2 + 2  # at most a connect and a read timeout each, never a hang


def test_queue_mode_with_redis_down_answers_its_503(redis_cache, settings, coffee_png, media_root):
    unreachable = f"redis://127.0.0.1:{redis_cache.port}/0"
    settings.TASKS = task_backends("rq", redis_url=unreachable)
    settings.RQ_QUEUES = rq_queues(unreachable)
    redis_cache.stop()

    response = APIClient().post(
        "/image",
        {"image": SimpleUploadedFile("p.png", coffee_png)},
        format="multipart",
        headers={"X-API-Key": "the-key"},
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert stored_files(media_root) == []


async def test_a_new_websocket_is_accepted_while_redis_is_down_and_hears_broadcasts_once_it_is_back(
    redis_server, coffee_png
):
    redis_server.stop()
    client = WebsocketCommunicator(application, "/faces", headers=[(b"host", b"testserver")])

    connected, _ = await client.connect(timeout=10)
    redis_server.start()
    await rejoined(redis_server)
    body = (await upload(coffee_png)).json()

    assert connected
    assert (await client.receive_json_from(timeout=5))["id"] == body["id"]
    await client.disconnect()


@pytest.fixture
def silent_redis(settings, fresh_outage) -> Iterator[str]:
    """A Redis that accepts connections and never answers (a hung server, a dropped route), as cache and layer."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.CACHES = caches(url, timeout=0.5)
        settings.CHANNEL_LAYERS = channel_layers(url)
        yield url


@pytest.mark.timeout(60)
async def test_a_redis_that_does_not_answer_holds_neither_an_upload_nor_a_new_websocket(silent_redis, coffee_png):
    client = WebsocketCommunicator(application, "/faces", headers=[(b"host", b"testserver")])
    started = time.monotonic()

    connected, _ = await client.connect(timeout=30)
    connecting = time.monotonic() - started
    uploaded = await upload(coffee_png)
    uploading = time.monotonic() - started - connecting

    assert connected
    assert connecting < 10
    assert uploaded.status_code == 201
    assert uploading < 10
    await client.disconnect()


@pytest.mark.timeout(120)
def test_a_live_servers_upload_is_answered_without_waiting_for_its_broadcast(tmp_path, coffee_png):
    # Daphne's process hands the broadcast to its event loop and answers: a channel layer that never
    # answers would otherwise hold the upload for BROADCAST_TIMEOUT_SECONDS.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        configuration = {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            "THROTTLE_UPLOADS": "",  # no cache in the way: only the broadcast needs Redis
            "THROTTLE_READS": "",
        }
        with running_server(tmp_path, configuration) as server:
            uploads = []
            for _ in range(2):  # the first loads the detector
                started = time.monotonic()
                response = requests.post(server.base_url + "/image", files={"image": ("c.png", coffee_png)}, timeout=60)
                uploads.append((response.status_code, time.monotonic() - started))

    assert [status for status, _ in uploads] == [201, 201]
    assert uploads[1][1] < BROADCAST_TIMEOUT_SECONDS - 1
