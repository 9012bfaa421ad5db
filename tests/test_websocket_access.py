"""With API_KEYS_REQUIRED_FOR_READ, /faces needs what GET /image needs: a key, or a staff login."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from access.services import api_key_create
from facesite.asgi import application
from tests.live_server import embedded_configuration, running_server

pytestmark = pytest.mark.django_db(transaction=True)


def client(*headers: tuple[bytes, bytes], subprotocols: list[str] | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, "/faces", headers=[(b"host", b"testserver"), *headers], subprotocols=subprotocols
    )


async def handshake(communicator: WebsocketCommunicator) -> tuple[bool, str | None]:
    """Whether the socket was accepted, and with which subprotocol."""
    connected, subprotocol = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected, subprotocol


@pytest.fixture
def reads_need_a_key(settings) -> str:
    settings.API_KEYS_REQUIRED_FOR_READ = True
    _, key = api_key_create(name="camera")
    return key


async def test_without_a_key_it_is_refused(reads_need_a_key):
    assert not (await handshake(client()))[0]


async def test_a_wrong_key_is_refused(reads_need_a_key):
    wrong = reads_need_a_key[:-1] + ("x" if reads_need_a_key[-1] != "x" else "y")

    assert not (await handshake(client(subprotocols=["faces", f"api-key.{wrong}"])))[0]
    assert not (await handshake(client((b"x-api-key", wrong.encode()))))[0]


async def test_a_browser_passes_the_key_as_a_subprotocol_and_gets_faces_back(reads_need_a_key):
    assert await handshake(client(subprotocols=["faces", f"api-key.{reads_need_a_key}"])) == (True, "faces")


@pytest.mark.parametrize("header", [b"authorization", b"x-api-key"])
async def test_a_script_passes_the_key_in_a_header(reads_need_a_key, header):
    value = f"Bearer {reads_need_a_key}" if header == b"authorization" else reads_need_a_key

    assert (await handshake(client((header, value.encode()))))[0]


async def test_a_key_from_the_environment_works(settings):
    settings.API_KEYS_REQUIRED_FOR_READ = True
    settings.API_KEYS = ["a-key-from-the-environment"]

    assert not (await handshake(client()))[0]
    assert (await handshake(client((b"x-api-key", b"a-key-from-the-environment"))))[0]


def session_cookie(*, is_staff: bool) -> tuple[bytes, bytes]:
    user = get_user_model().objects.create_user("someone", password="a long pass phrase", is_staff=is_staff)
    browser = Client()
    browser.force_login(user)
    return (
        b"cookie",
        f"{django_settings.SESSION_COOKIE_NAME}={browser.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode(),
    )


async def test_the_page_of_a_logged_in_staff_user_listens_with_its_session(reads_need_a_key):
    cookie = await sync_to_async(session_cookie)(is_staff=True)

    assert (await handshake(client(cookie)))[0]


async def test_a_logged_in_user_who_is_not_staff_needs_a_key(reads_need_a_key):
    cookie = await sync_to_async(session_cookie)(is_staff=False)

    assert not (await handshake(client(cookie)))[0]


async def test_without_the_setting_anyone_listens(settings):
    settings.API_KEYS_REQUIRED_FOR_READ = False
    await sync_to_async(api_key_create)(name="camera")

    assert (await handshake(client()))[0]


async def test_through_the_real_server_the_key_opens_the_socket_and_is_never_logged(tmp_path, coffee_png, http):
    key = "a-key-that-must-not-reach-the-logs"
    protected = {"API_KEYS": key, "API_KEYS_REQUIRED_FOR_READ": "true"}
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **protected}) as server,
    ):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws_url, proxy=None)
        async with (
            connect(server.ws_url, proxy=None, subprotocols=["faces", f"api-key.{key}"]) as browser_like,
            connect(server.ws_url, proxy=None, additional_headers={"X-API-Key": key}) as script,
        ):
            body = (
                await asyncio.to_thread(
                    http.post, server.base_url + "/image", files={"image": coffee_png}, headers={"X-API-Key": key}
                )
            ).json()
            messages = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for socket in (browser_like, script)]
            subprotocol = browser_like.subprotocol
        output = server.output()

    assert refused.value.response.status_code == 403
    assert subprotocol == "faces"
    assert [message["id"] for message in messages] == [body["id"]] * 2
    assert key not in output
