"""Who may open /stream: whoever may upload (a key once keys exist, or a staff login), a few streams
per client address."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from access.services import api_key_create
from facesite.asgi import application
from tests.test_websocket_access import handshake, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def stream(*headers: tuple[bytes, bytes], subprotocols: list[str] | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, "/stream", headers=[(b"host", b"testserver"), *headers], subprotocols=subprotocols
    )


@pytest.fixture
def key() -> str:
    return api_key_create(name="doorbell")[1]


async def test_without_any_key_configured_anyone_streams():
    assert (await handshake(stream()))[0]


async def test_once_a_key_exists_a_stream_without_one_is_refused(key):
    assert not (await handshake(stream()))[0]
    assert not (await handshake(stream((b"x-api-key", b"fk_wrong"))))[0]


async def test_a_browser_passes_the_key_as_a_subprotocol(key):
    assert await handshake(stream(subprotocols=["faces", f"api-key.{key}"])) == (True, "faces")


async def test_a_script_passes_the_key_in_a_header(key):
    assert (await handshake(stream((b"authorization", f"Bearer {key}".encode()))))[0]


async def test_keys_required_for_reading_do_not_open_streams_without_one(key, settings):
    settings.API_KEYS_REQUIRED_FOR_READ = False  # reading is open; uploading, and so streaming, is not

    assert not (await handshake(stream()))[0]


async def test_the_page_of_a_logged_in_staff_user_streams_with_its_session(key):
    assert (await handshake(stream(await sync_to_async(session_cookie)(is_staff=True))))[0]


async def test_a_logged_in_user_who_is_not_staff_needs_a_key(key):
    assert not (await handshake(stream(await sync_to_async(session_cookie)(is_staff=False))))[0]


async def test_a_client_address_holds_at_most_its_cap_of_streams(settings):
    settings.STREAM_MAX_PER_CLIENT = 2
    opened = [stream(), stream()]
    for communicator in opened:
        assert (await communicator.connect(timeout=5))[0]

    assert not (await handshake(stream()))[0]
    await opened[0].disconnect()
    assert (await handshake(stream()))[0]  # a place given back when a stream closes
    await opened[1].disconnect()
