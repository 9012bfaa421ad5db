"""GET /healthz and GET /readyz."""

import pytest
from rest_framework.test import APIClient

from facesite.layers import channel_layers

pytestmark = pytest.mark.django_db


def test_healthz_says_the_process_is_alive():
    response = APIClient().get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_checks_every_dependency():
    response = APIClient().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "media_storage": "ok", "channel_layer": "ok", "detector": "ok"},
    }


def test_readyz_checks_a_redis_layer(settings, redis_url):
    settings.CHANNEL_LAYERS = channel_layers(redis_url)

    assert APIClient().get("/readyz").json()["checks"]["channel_layer"] == "ok"


def test_readyz_reports_an_unreachable_channel_layer(settings):
    settings.CHANNEL_LAYERS = channel_layers("redis://127.0.0.1:1/0")  # nothing listens on port 1

    response = APIClient().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["channel_layer"].startswith("error:")
    assert body["checks"]["database"] == "ok"


def test_readyz_reports_unwritable_media_storage(settings, tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("media cannot live under a file")
    settings.MEDIA_ROOT = blocker / "media"

    response = APIClient().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["media_storage"].startswith("error:")
