"""Rate limits per API key and per client address, answered with 429 and Retry-After."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from access.services import api_key_create

pytestmark = pytest.mark.django_db


def upload(content: bytes, address: str = "192.0.2.1", **headers: str):
    return APIClient(REMOTE_ADDR=address).post(
        "/image", {"image": SimpleUploadedFile("p", content)}, format="multipart", headers=headers
    )


def test_uploads_past_the_rate_get_429_with_retry_after(coffee_png, settings):
    settings.THROTTLE_RATES = {"uploads": "2/min", "reads": "100/min"}

    statuses = [upload(coffee_png).status_code for _ in range(3)]
    refused = upload(coffee_png)

    assert statuses == [201, 201, 429]
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60


def test_each_client_address_has_its_own_allowance(coffee_png, settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "100/min"}

    assert upload(coffee_png, address="192.0.2.1").status_code == 201
    assert upload(coffee_png, address="192.0.2.1").status_code == 429
    assert upload(coffee_png, address="192.0.2.2").status_code == 201


def test_each_api_key_has_its_own_allowance_wherever_it_comes_from(coffee_png, settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "100/min"}
    _, first = api_key_create(name="first")
    _, second = api_key_create(name="second")

    assert upload(coffee_png, address="192.0.2.1", Authorization=f"Bearer {first}").status_code == 201
    assert upload(coffee_png, address="192.0.2.9", Authorization=f"Bearer {first}").status_code == 429
    assert upload(coffee_png, address="192.0.2.1", Authorization=f"Bearer {second}").status_code == 201


def test_reads_are_counted_apart_from_uploads(coffee_png, settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "2/min"}
    upload(coffee_png)

    reads = [APIClient(REMOTE_ADDR="192.0.2.1").get("/image").status_code for _ in range(3)]

    assert reads == [200, 200, 429]
    assert APIClient(REMOTE_ADDR="192.0.2.1").get("/healthz").status_code == 200
