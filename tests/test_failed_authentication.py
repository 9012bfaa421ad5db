"""Guessing is not free: wrong API keys and wrong admin passwords are throttled per client address."""

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from facesite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = 5
KEY = "the-right-key-from-the-environment"


@pytest.fixture(autouse=True)
def keys(settings) -> None:
    settings.API_KEYS = [KEY]
    settings.AUTH_FAILURE_LIMIT = LIMIT
    settings.AUTH_FAILURE_WINDOW_SECONDS = 600
    settings.AXES_FAILURE_LIMIT = LIMIT  # what facesite.settings derives from AUTH_FAILURE_LIMIT
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests


def guess(address: str, key: str, method: str = "get"):
    client = APIClient(REMOTE_ADDR=address)
    if method == "post":
        return client.post(
            "/image", {"image": SimpleUploadedFile("p", b"x")}, format="multipart", headers={"X-API-Key": key}
        )
    return client.get("/image", headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("method", ["get", "post"])
def test_wrong_keys_past_the_limit_get_429_with_retry_after(method):
    statuses = [guess("192.0.2.1", f"guess-{number}", method).status_code for number in range(200)]

    assert statuses[:LIMIT] == [401] * LIMIT
    assert set(statuses[LIMIT:]) == {429}
    refused = guess("192.0.2.1", "one-more", method)
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 600


def test_a_locked_out_address_cannot_use_even_the_right_key_until_its_window_ends(settings):
    for number in range(LIMIT):
        guess("192.0.2.1", f"guess-{number}")

    assert guess("192.0.2.1", KEY).status_code == 429
    assert guess("192.0.2.2", KEY).status_code == 200  # another address is not concerned
    assert guess("192.0.2.2", "guess").status_code == 401


def test_right_keys_count_for_nothing():
    statuses = [guess("192.0.2.1", KEY).status_code for _ in range(LIMIT * 2)]

    assert set(statuses) == {200}


async def test_wrong_keys_on_the_websocket_count_too(settings):
    settings.API_KEYS_REQUIRED_FOR_READ = True

    def socket(key: str) -> WebsocketCommunicator:
        return WebsocketCommunicator(
            application, "/faces", headers=[(b"host", b"testserver"), (b"x-api-key", key.encode())]
        )

    for number in range(LIMIT):
        assert not (await socket(f"guess-{number}").connect(timeout=5))[0]
    assert not (await socket(KEY).connect(timeout=5))[0]  # locked out: even the right key
    http = await sync_to_async(guess)("unknown", KEY)  # the test communicator's address
    assert http.status_code == 429


def admin_login(address: str, password: str):
    return Client(REMOTE_ADDR=address).post(
        "/admin/login/?next=/admin/", {"username": "operator", "password": password}
    )


def test_the_admin_login_locks_an_address_out_after_wrong_passwords():
    get_user_model().objects.create_superuser("operator", "", "the right pass phrase")

    attempts = [admin_login("192.0.2.1", f"wrong {number}").status_code for number in range(LIMIT + 5)]
    right_password = admin_login("192.0.2.1", "the right pass phrase")
    elsewhere = admin_login("192.0.2.2", "the right pass phrase")

    assert attempts[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(attempts[LIMIT:]) == {429}
    assert right_password.status_code == 429
    assert elsewhere.status_code == 302  # logged in: the lockout is per address


def test_a_limit_of_zero_means_no_limit(settings):
    settings.AUTH_FAILURE_LIMIT = 0

    statuses = [guess("192.0.2.1", f"guess-{number}").status_code for number in range(LIMIT * 2)]

    assert set(statuses) == {401}
    assert guess("192.0.2.1", KEY).status_code == 200


def test_the_address_may_try_again_once_its_window_has_ended(settings):
    settings.AUTH_FAILURE_WINDOW_SECONDS = 1
    for number in range(LIMIT):
        guess("192.0.2.1", f"guess-{number}")
    locked = guess("192.0.2.1", KEY)

    deadline = time.monotonic() + 10
    while (status := guess("192.0.2.1", KEY).status_code) == 429 and time.monotonic() < deadline:
        time.sleep(0.1)

    assert (locked.status_code, locked["Retry-After"]) == (429, "1")
    assert status == 200
