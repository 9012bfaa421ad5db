"""Several server processes share one Redis: every websocket client hears every upload,
whichever process took the upload and whichever holds the socket."""

import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from tests.live_server import REPO_ROOT, embedded_configuration, running_server, wait_for


@pytest.fixture
def shared_redis(redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "CHANNEL_LAYER_PREFIX": f"multi-{uuid.uuid4().hex[:8]}"}


def upload(base_url: str, photo: bytes) -> dict:
    session = requests.Session()
    session.trust_env = False
    response = session.post(base_url + "/image", files={"image": photo}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_client_of_one_server_hears_an_upload_to_another(tmp_path, shared_redis, astronaut_jpeg):
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    first_root.mkdir()
    second_root.mkdir()
    with (
        embedded_configuration(first_root) as first_configuration,
        embedded_configuration(second_root) as second_configuration,
        running_server(first_root, {**first_configuration, **shared_redis}) as first,
        running_server(second_root, {**second_configuration, **shared_redis}) as second,
        connect(first.ws_url, proxy=None) as listener,
    ):
        body = upload(second.base_url, astronaut_jpeg)
        message = json.loads(listener.recv(timeout=5))

    assert message["type"] == "detection.created"
    assert message["id"] == body["id"]


def two_workers(server, *, excluding: set[int] = frozenset()) -> set[int] | None:
    """The supervisor's two worker processes, once there are two and none of them is in `excluding`."""
    found = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout
    children = {int(child) for child in found.split()}
    return children if len(children) == 2 and not children & excluding else None


def test_workers_share_one_port_every_client_hears_every_upload_a_killed_one_is_replaced_and_sigterm_stops_all(
    tmp_path, shared_redis, coffee_png
):
    # One WORKERS=2 server through its whole life (each start costs seconds): serving, a worker killed, stopped.
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **shared_redis, "WORKERS": "2"}) as server,
    ):
        first = wait_for(lambda: two_workers(server), 10, "two workers")
        wait_for(lambda: server.output().count("Listening on TCP address") == 2, 30, "two workers listening")
        # The kernel spreads the sockets over both processes; each hears every upload, whichever took it.
        with ExitStack() as sockets:
            listeners = [sockets.enter_context(connect(server.ws_url, proxy=None)) for _ in range(6)]
            shared = [upload(server.base_url, coffee_png) for _ in range(4)]
            heard = [[json.loads(listener.recv(timeout=5))["id"] for _ in shared] for listener in listeners]

        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        # Uploads keep working (the other worker takes them) while a new worker starts.
        bodies = [upload(server.base_url, coffee_png) for _ in range(3)]
        now = wait_for(lambda: two_workers(server, excluding={killed}), 30, "new worker")
        wait_for(lambda: server.output().count("Listening on TCP address") == 3, 30, "new worker listening")
        bodies += [upload(server.base_url, coffee_png) for _ in range(3)]

        server.process.send_signal(signal.SIGTERM)
        exit_code = server.process.wait(timeout=40)
        output = server.output()

    assert all(ids == [body["id"] for body in shared] for ids in heard)
    assert len(bodies) == 6
    assert now - first and now & first == first - {killed}
    assert f"Server process {killed} exited with -9; started" in output
    assert exit_code == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in now)  # SIGTERM reached both, and they stopped
    assert output.count("Stopping: no new connections") == 2


def test_workers_dying_too_often_stop_the_service_loudly(tmp_path, shared_redis):
    limits = {"WORKERS": "2", "WORKER_RESTARTS_PER_MINUTE": "1"}
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **shared_redis, **limits}) as server,
    ):
        first = wait_for(lambda: two_workers(server), 10, "two workers")
        os.kill(min(first), signal.SIGKILL)
        replaced = wait_for(lambda: two_workers(server, excluding={min(first)}), 30, "new worker")
        os.kill(max(replaced - first), signal.SIGKILL)  # the second death within a minute
        exit_code = server.process.wait(timeout=40)
        output = server.output()

    assert exit_code == 1
    assert "after 1 restarts in a minute: giving up, stopping all" in output
    assert not any(Path(f"/proc/{pid}").exists() for pid in replaced)


def test_several_workers_without_redis_refuse_to_start():
    env = {**os.environ, "WORKERS": "3", "PORT": "0"}
    env.pop("REDIS_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "facesite.serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "WORKERS=3 needs REDIS_URL" in result.stderr


def test_the_entrypoint_refuses_several_workers_without_redis_before_anything_else(tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "WORKERS": "2",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env.pop("REDIS_URL", None)

    result = subprocess.run(["./entrypoint.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "WORKERS=2 needs REDIS_URL" in result.stderr
    assert "Face detection server on port" not in result.stdout  # no banner promising a server
    assert not (tmp_path / "db.sqlite3").exists()  # and no migrations run
