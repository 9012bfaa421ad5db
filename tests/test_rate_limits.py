"""Rate limits per API key and per client address, answered with 429 and Retry-After."""

import uuid
from contextlib import ExitStack

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from access.services import api_key_create
from tests.live_server import embedded_configuration, running_server

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


def test_keys_from_the_environment_that_start_alike_have_their_own_allowance(coffee_png, settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "100/min"}
    settings.API_KEYS = ["envkey-one", "envkey-two"]

    assert upload(coffee_png, **{"X-API-Key": "envkey-one"}).status_code == 201
    assert upload(coffee_png, **{"X-API-Key": "envkey-one"}).status_code == 429
    other = upload(coffee_png, **{"X-API-Key": "envkey-two"})
    assert other.status_code == 201, other.content


def reads_from(address: str, forwarded_for: str) -> int:
    return APIClient(REMOTE_ADDR=address).get("/image", headers={"X-Forwarded-For": forwarded_for}).status_code


def test_behind_a_proxy_each_forwarded_client_has_its_own_allowance(settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "1/min"}
    settings.NUM_PROXIES = 1
    proxy = "10.0.0.2"

    # The proxy appends the address it saw; what the client wrote before it does not count.
    assert reads_from(proxy, "192.0.2.1") == 200
    assert reads_from(proxy, "192.0.2.1") == 429
    assert reads_from(proxy, "198.51.100.7, 192.0.2.1") == 429
    assert reads_from(proxy, "192.0.2.2") == 200


def test_without_num_proxies_x_forwarded_for_is_ignored(settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "1/min"}

    assert reads_from("192.0.2.1", "198.51.100.1") == 200
    assert reads_from("192.0.2.1", "198.51.100.2") == 429  # a made-up header buys no new allowance


def test_processes_sharing_redis_share_the_counts(tmp_path, redis_url, http):
    # Two servers on one Redis, as with WORKERS>1 or replicas: one allowance between them. A key of
    # its own keeps this test's counter apart from any other run's.
    key = f"shared-{uuid.uuid4().hex}"
    shared = {"REDIS_URL": redis_url, "API_KEYS": key, "THROTTLE_READS": "3/min"}
    with ExitStack() as stack:
        servers = []
        for name in ("first", "second"):
            root = tmp_path / name
            root.mkdir()
            configuration = stack.enter_context(embedded_configuration(root))
            servers.append(stack.enter_context(running_server(root, {**configuration, **shared})))
        statuses = [
            http.get(server.base_url + "/image", headers={"X-API-Key": key}, timeout=10).status_code
            for server in servers * 2
        ]

    assert statuses == [200, 200, 200, 429]


def test_behind_nginx_as_compose_configures_it_a_made_up_forwarded_for_buys_nothing(tmp_path, http):
    # compose: PROXY_HEADERS=true (Daphne takes the leftmost X-Forwarded-For as the peer, which the client
    # wrote itself) and NUM_PROXIES=1 (the limits take the address nginx appended, the rightmost).
    proxy_settings = {"PROXY_HEADERS": "true", "NUM_PROXIES": "1", "THROTTLE_READS": "1/min"}
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **proxy_settings}) as server,
    ):

        def read(forwarded_for: str) -> int:
            return http.get(
                server.base_url + "/image", headers={"X-Forwarded-For": forwarded_for}, timeout=10
            ).status_code

        # What nginx forwards: whatever the client sent, then the address nginx saw.
        statuses = [read("198.51.100.1, 192.0.2.1"), read("198.51.100.2, 192.0.2.1"), read("192.0.2.2")]

    assert statuses == [200, 429, 200]
