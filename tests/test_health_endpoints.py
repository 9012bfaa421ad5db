"""GET /healthz and GET /readyz."""

import pytest
from rest_framework.test import APIClient

from facesite.layers import channel_layers
from tests.live_server import embedded_configuration, running_server

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


def test_readyz_reports_a_detector_that_cannot_be_built(settings):
    # onnxruntime refuses a thread count it cannot hold: the detector's session is never made.
    settings.DETECTOR_THREADS = 2**31

    response = APIClient().get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["detector"].startswith("error:")
    assert checks["database"] == "ok"


def test_readyz_on_the_live_server_reports_a_database_it_cannot_open(tmp_path, http):
    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
        ready = http.get(server.base_url + "/readyz", timeout=30)
        # The SQLite file replaced by a folder: every new connection fails, as with a lost disk.
        database = tmp_path / "db.sqlite3"
        database.rename(tmp_path / "db.sqlite3.away")
        database.mkdir()
        unready = http.get(server.base_url + "/readyz", timeout=30)

    assert ready.status_code == 200, ready.text
    assert unready.status_code == 503, unready.text
    body = unready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error:")
    assert body["checks"]["detector"] == "ok"
