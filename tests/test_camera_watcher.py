"""The camera watcher against real cameras (GStreamer's RTSP server, an HTTP MJPEG server): detections
stored when faces appear, nothing without faces, reconnecting, refusals, and every state change
announced to a real /faces client through a Redis channel layer (the watcher's threads are not the
test's event loop, as in its own process)."""

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command

from detection.models import Detection
from facesite.asgi import application
from facesite.layers import channel_layers
from live.models import Camera
from live.selectors import cameras_to_watch
from live.watcher import CameraWatcher, FacesAppear
from tests.cameras import gstreamer_camera, mjpeg_camera
from tests.live_server import free_port

# The watcher's threads have database connections of their own: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_layer(redis_url, settings) -> None:
    settings.CHANNEL_LAYERS = channel_layers(redis_url, prefix=f"test-cameras-{uuid.uuid4().hex[:12]}")


@contextmanager
def running_watcher() -> Iterator[CameraWatcher]:
    watcher = CameraWatcher(poll_seconds=0.2, timeouts=(2, 2))
    stopping = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stopping,))
    thread.start()
    try:
        yield watcher
    finally:
        stopping.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


@asynccontextmanager
async def faces_client() -> AsyncIterator[WebsocketCommunicator]:
    client = WebsocketCommunicator(application, "/faces", headers=[(b"host", b"testserver")])
    assert (await client.connect())[0]
    try:
        yield client
    finally:
        await client.disconnect()


async def next_message(client: WebsocketCommunicator, wanted: Callable[[dict], bool], *, timeout: float = 15) -> dict:
    """The first message `wanted` picks, skipping the others."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = await client.receive_json_from(timeout=left)
        if wanted(message):
            return message
    raise AssertionError("no such message")


def status(camera: str, state: str) -> Callable[[dict], bool]:
    return lambda message: (
        message["type"] == "camera.status"
        and (message["camera"], message["state"])
        == (
            camera,
            state,
        )
    )


add_camera = sync_to_async(lambda **fields: Camera.objects.create(**{"profile": "fast", **fields}))


async def test_faces_in_view_are_stored_as_a_detection_of_the_camera_and_announced(redis_layer, faces_clip):
    with gstreamer_camera(faces_clip) as url:
        async with faces_client() as client:
            with running_watcher():
                camera = await add_camera(name="door", url=url)

                connecting = await next_message(client, status("door", "connecting"))
                connected = await next_message(client, status("door", "connected"))
                created = await next_message(client, lambda message: message["type"] == "detection.created")
                await asyncio.sleep(1.5)  # three more frames with the same faces, within the cooldown

            idle = await next_message(client, status("door", "idle"))

    assert connecting["last_error"] == connected["last_error"] == idle["last_error"] == ""
    assert (created["source"], created["camera"], created["face_count"]) == ("camera", "door", 2)
    detections = await sync_to_async(list)(Detection.objects.all())
    assert [(d.source, d.camera_id, d.width) for d in detections] == [("camera", camera.id, 640)]
    await camera.arefresh_from_db()
    assert camera.state == Camera.State.IDLE and camera.watched_by == ""


async def test_a_camera_without_faces_stores_nothing(redis_layer, coffee_clip):
    with gstreamer_camera(coffee_clip) as url:
        async with faces_client() as client:
            with running_watcher() as watcher:
                camera = await add_camera(name="kitchen", url=url, sample_fps=5)
                await next_message(client, status("kitchen", "connected"))
                while watcher.watches[camera.id].frames_sampled < 10:
                    await asyncio.sleep(0.1)

    assert await Detection.objects.acount() == 0


async def test_a_dropped_stream_is_retried_until_it_comes_back(redis_layer, faces_clip):
    port = free_port()
    async with faces_client() as client:
        with running_watcher():
            with gstreamer_camera(faces_clip, port=port) as url:
                camera = await add_camera(name="gate", url=url, store_snapshots=False)
                await next_message(client, status("gate", "connected"))
            dropped = await next_message(client, status("gate", "retrying"))
            with gstreamer_camera(faces_clip, port=port):
                await next_message(client, status("gate", "connected"), timeout=20)
                await camera.arefresh_from_db()

    assert dropped["last_error"].startswith(("The stream ended.", "The stream stalled", "The stream failed"))
    assert camera.state == Camera.State.CONNECTED and camera.last_error == ""


async def test_a_refused_camera_is_retried_and_says_why_until_disabled(redis_layer):
    async with faces_client() as client:
        with running_watcher():
            camera = await add_camera(name="porch", url=f"rtsp://127.0.0.1:{free_port()}/cam")
            first = await next_message(client, status("porch", "retrying"))
            second = await next_message(client, status("porch", "retrying"))

            camera.enabled = False
            await camera.asave()
            idle = await next_message(client, status("porch", "idle"))

    assert first["last_error"] == "Cannot open the stream: Connection refused. Retrying in 1 s."
    assert second["last_error"] == "Cannot open the stream: Connection refused. Retrying in 2 s."
    assert idle["last_error"] == ""


async def test_faces_from_an_mjpeg_camera_are_only_announced_when_snapshots_are_off(redis_layer, astronaut_jpeg):
    with mjpeg_camera(astronaut_jpeg, fps=10) as url:
        async with faces_client() as client:
            with running_watcher():
                await add_camera(name="hall", url=url, store_snapshots=False)
                faces = await next_message(client, lambda message: message["type"] == "camera.faces")

    assert (faces["camera"], faces["width"], faces["height"], len(faces["faces"])) == ("hall", 512, 512, 1)
    assert await Detection.objects.acount() == 0


def test_faces_appear_after_none_when_more_come_or_after_the_cooldown():
    appear = FacesAppear(cooldown=10)
    # (faces, seconds): none; one appears; still one; two; one left; one left, 10 s after the last
    # stored; still one; gone; back.
    frames = [(0, 0), (1, 1), (1, 2), (2, 3), (1, 4), (1, 13), (1, 14), (0, 15), (1, 16)]

    fired = [appear.seen(count, now=now) for count, now in frames]

    assert fired == [False, True, False, True, False, True, False, False, True]


def test_shards_share_the_enabled_cameras_once():
    cameras = [Camera.objects.create(name=f"camera {number}", url="rtsp://camera/") for number in range(7)]
    Camera.objects.filter(id=cameras[0].id).update(enabled=False)

    shards = [set(cameras_to_watch(shard=index, shards=3)) for index in (1, 2, 3)]

    assert sorted(camera.id for shard in shards for camera in shard) == [camera.id for camera in cameras[1:]]
    assert all(shards)


@pytest.mark.parametrize("shard", ["0/3", "4/3", "two", "1/0"])
def test_the_command_refuses_a_shard_out_of_range(shard):
    with pytest.raises(CommandError, match="--shard"):
        call_command("watch_cameras", shard=shard)
