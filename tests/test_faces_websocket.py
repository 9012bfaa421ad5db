"""The /faces websocket: every upload reaches every connected client."""

import asyncio
import json
import threading
import uuid

import pytest
import requests
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from rest_framework.test import APIClient
from websockets.asyncio.client import connect

from detection.broadcast import FACES_GROUP, faces_message
from detection.serializers import URL_FIELDS, with_base_url
from detection.services import detection_create
from facesite.asgi import application
from facesite.layers import channel_layers
from tests.live_server import embedded_configuration, running_server

# on_commit callbacks (the broadcast) only run when a transaction really commits.
pytestmark = pytest.mark.django_db(transaction=True)


def client_for(origin: bytes | None = None, host: bytes = b"testserver") -> WebsocketCommunicator:
    headers = [(b"host", host)] + ([(b"origin", origin)] if origin else [])
    return WebsocketCommunicator(application, "/faces", headers=headers)


@sync_to_async
def upload(content: bytes) -> dict:
    response = APIClient().post("/image", {"image": SimpleUploadedFile("p", content)}, format="multipart")
    assert response.status_code == 201
    return response.json()


async def assert_broadcast_reaches(clients: list[WebsocketCommunicator], content: bytes) -> None:
    for client in clients:
        connected, _ = await client.connect()
        assert connected
    body = await upload(content)
    for client in clients:
        message = await client.receive_json_from(timeout=5)
        assert message == {"type": "detection.created", **body}
    for client in clients:
        await client.disconnect()


async def test_it_sends_each_upload_to_every_client(astronaut_jpeg, coffee_png):
    clients = [client_for(), client_for()]
    for client in clients:
        assert (await client.connect())[0]

    with_face = await upload(astronaut_jpeg)
    without_face = await upload(coffee_png)

    for client in clients:
        assert (await client.receive_json_from(timeout=5))["url"] == with_face["url"]
        assert (await client.receive_json_from(timeout=5))["url"] == without_face["url"]
        await client.disconnect()


async def test_the_process_joins_the_group_once_and_leaves_with_its_last_client(coffee_png):
    layer = get_channel_layer()
    clients = [client_for() for _ in range(3)]
    for client in clients:
        assert (await client.connect())[0]

    assert len(layer.groups["faces"]) == 1  # one member for all three sockets
    body = await upload(coffee_png)
    for client in clients:
        assert (await client.receive_json_from(timeout=5))["id"] == body["id"]
        await client.disconnect()
    await asyncio.sleep(0.1)  # the relay leaves on its way out

    assert "faces" not in layer.groups


async def test_the_message_carries_the_same_fields_as_the_upload_answer(astronaut_jpeg):
    await assert_broadcast_reaches([client_for()], astronaut_jpeg)


async def test_a_rejected_upload_is_not_announced(astronaut_jpeg, coffee_png):
    client = client_for()
    assert (await client.connect())[0]

    rejected = await sync_to_async(APIClient().post)(
        "/image", {"image": SimpleUploadedFile("p", astronaut_jpeg[:5000])}, format="multipart"
    )
    body = await upload(coffee_png)

    assert rejected.status_code == 400
    assert (await client.receive_json_from(timeout=5))["id"] == body["id"]  # the first message is the next upload's
    await client.disconnect()


async def test_urls_use_the_host_each_client_connected_to(coffee_png):
    lan_client = client_for(host=b"192.0.2.10:8282")
    assert (await lan_client.connect())[0]

    body = await upload(coffee_png)

    message = await lan_client.receive_json_from(timeout=5)
    assert message["url"] == body["url"].replace("http://testserver", "http://192.0.2.10:8282")
    await lan_client.disconnect()


async def test_urls_use_public_url_when_set(coffee_png, settings):
    settings.PUBLIC_URL = "https://faces.example.com"
    client = client_for()
    assert (await client.connect())[0]

    await upload(coffee_png)

    assert (await client.receive_json_from(timeout=5))["url"].startswith("https://faces.example.com/media/")
    await client.disconnect()


async def test_it_accepts_a_browser_on_an_allowed_host(settings):
    settings.ALLOWED_HOSTS = ["faces.example.com"]
    client = client_for(origin=b"http://faces.example.com:8282")

    assert (await client.connect())[0]
    await client.disconnect()


async def test_it_rejects_a_browser_page_from_another_site(settings):
    settings.ALLOWED_HOSTS = ["faces.example.com"]
    client = client_for(origin=b"https://evil.example.net")

    connected, _ = await client.connect()

    assert not connected


async def test_it_accepts_scripts_that_send_no_origin(settings):
    settings.ALLOWED_HOSTS = ["faces.example.com"]
    client = client_for(origin=None)

    assert (await client.connect())[0]
    await client.disconnect()


async def test_it_ignores_what_clients_send(coffee_png):
    client = client_for()
    assert (await client.connect())[0]

    await client.send_json_to({"type": "detection.created", "url": "http://evil.example.net/x.jpg"})

    assert await client.receive_nothing(timeout=0.5)
    await client.disconnect()


async def test_it_works_through_a_real_redis_layer(settings, redis_url, astronaut_jpeg):
    settings.CHANNEL_LAYERS = channel_layers(redis_url, prefix=f"test-{uuid.uuid4().hex}")

    await assert_broadcast_reaches([client_for(), client_for()], astronaut_jpeg)


async def test_a_redis_backed_relay_waits_past_redis_timeouts_without_an_error(settings, redis_url, coffee_png, caplog):
    # The layer's blocking receive asks Redis to wait 5 s; redis-py 8's default socket timeout, 5 s
    # too, would cut it short with an error: the relay would retry and rejoin every few seconds,
    # and a broadcast sent meanwhile would wait for it.
    settings.CHANNEL_LAYERS = channel_layers(redis_url, prefix=f"test-{uuid.uuid4().hex}")
    client = client_for()
    assert (await client.connect())[0]

    await asyncio.sleep(12)
    body = await upload(coffee_png)

    assert (await client.receive_json_from(timeout=5))["id"] == body["id"]
    assert not [record for record in caplog.records if record.name == "detection.relay"]
    await client.disconnect()


async def test_one_address_cannot_take_every_socket(settings):
    settings.WEBSOCKET_MAX_PER_CLIENT = 2
    clients = [client_for() for _ in range(3)]

    accepted = [(await client.connect())[0] for client in clients]

    assert accepted == [True, True, False]
    await clients[0].disconnect()
    replacement = client_for()
    assert (await replacement.connect())[0]  # a closed socket frees its place
    for client in (clients[1], replacement):
        await client.disconnect()


def test_absolute_urls_are_left_alone():
    # Media on S3 comes with URLs of its own; only paths get the client's base URL.
    payload = {"url": "https://bucket.example.com/a.jpg", "original_url": "/media/o.jpg", "detail_url": "/image/1"}

    assert with_base_url(payload, "http://lan:8282") == {
        "url": "https://bucket.example.com/a.jpg",
        "original_url": "http://lan:8282/media/o.jpg",
        "detail_url": "http://lan:8282/image/1",
    }


def in_transaction(content: bytes, *, inside: threading.Event, may_end: threading.Event, commit: bool) -> str:
    """An upload's detection, made and finished by the service inside a transaction that stays
    open until `may_end`, then commits or rolls back."""

    class RolledBack(Exception):
        pass

    try:
        with transaction.atomic():
            detection = detection_create(image_bytes=content)
            inside.set()
            assert may_end.wait(10)
            if not commit:
                raise RolledBack
    except RolledBack:
        pass
    return str(detection.id)


async def send_marker() -> None:
    """A message of a detection's shape, sent to every client now: what was broadcast before it
    arrives before it."""
    marker = {"type": "test.marker", **dict.fromkeys(URL_FIELDS)}
    await get_channel_layer().group_send(FACES_GROUP, faces_message(marker))


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
async def test_a_detection_saved_in_a_transaction_is_broadcast_only_once_it_commits(coffee_png, commit):
    client = client_for()
    assert (await client.connect())[0]
    inside, may_end = threading.Event(), threading.Event()

    saving = asyncio.ensure_future(
        sync_to_async(in_transaction)(coffee_png, inside=inside, may_end=may_end, commit=commit)
    )
    assert await asyncio.to_thread(inside.wait, 30)
    await send_marker()  # the detection is done and saved, its transaction still open
    may_end.set()
    detection_id = await saving
    await send_marker()  # after the transaction ended

    expected = ["test.marker", "detection.created", "test.marker"] if commit else ["test.marker", "test.marker"]
    heard = [await client.receive_json_from(timeout=5) for _ in expected]
    await client.disconnect()

    assert [message["type"] for message in heard] == expected
    if commit:
        assert heard[1]["id"] == detection_id


async def test_a_live_server_with_the_pubsub_layer_delivers_to_faces(tmp_path, redis_url, coffee_png):
    import redis.asyncio as redis

    prefix = f"test-pubsub-{uuid.uuid4().hex[:12]}"
    configuration = {"REDIS_URL": redis_url, "CHANNEL_LAYER": "pubsub", "CHANNEL_LAYER_PREFIX": prefix}
    connection = redis.Redis.from_url(redis_url)
    with (
        embedded_configuration(tmp_path) as embedded,
        running_server(tmp_path, {**embedded, **configuration}) as server,
    ):
        async with connect(server.ws_url, proxy=None) as listener:
            # Only the pub/sub layer subscribes to Redis channels (the core layer pops from lists).
            deadline = asyncio.get_running_loop().time() + 5
            while not (subscribed := await connection.pubsub_channels(f"{prefix}*")):
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.05)
            answer = await asyncio.to_thread(
                requests.post, server.base_url + "/image", files={"image": ("c.png", coffee_png)}, timeout=30
            )
            message = json.loads(await asyncio.wait_for(listener.recv(), timeout=10))
    await connection.aclose()

    assert subscribed, "the server's process is not subscribed to any Redis channel of its prefix"
    assert answer.status_code == 201, answer.text
    assert (message["type"], message["id"]) == ("detection.created", answer.json()["id"])


async def test_urls_use_the_servers_address_when_the_client_sent_no_host(coffee_png):
    # An HTTP/1.0-style handshake without Host: the URLs name the address the client reached.
    client = WebsocketCommunicator(application, "/faces")
    client.scope["server"] = ("192.0.2.7", 8282)
    assert (await client.connect())[0]

    body = await upload(coffee_png)

    message = await client.receive_json_from(timeout=5)
    assert message["url"] == body["url"].replace("http://testserver", "http://192.0.2.7:8282")
    await client.disconnect()


async def test_urls_use_https_for_a_client_on_wss(coffee_png):
    client = client_for(host=b"faces.example.com")
    client.scope["scheme"] = "wss"
    assert (await client.connect())[0]

    body = await upload(coffee_png)

    message = await client.receive_json_from(timeout=5)
    for field in ("url", "original_url", "detail_url"):
        assert message[field] == body[field].replace("http://testserver", "https://faces.example.com")
    await client.disconnect()
