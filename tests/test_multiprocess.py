"""Several server processes share one Redis: every websocket client hears every upload,
whichever process took the upload and whichever holds the socket."""

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
from websockets.asyncio.client import connect

from tests.live_server import REPO_ROOT, embedded_configuration, running_server


@pytest.fixture
def shared_redis(redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "CHANNEL_LAYER_PREFIX": f"multi-{uuid.uuid4().hex[:8]}"}


def upload(base_url: str, photo: bytes) -> dict:
    session = requests.Session()
    session.trust_env = False
    response = session.post(base_url + "/image", files={"image": photo}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_client_of_one_server_hears_an_upload_to_another(tmp_path, shared_redis, astronaut_jpeg):
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    first_root.mkdir()
    second_root.mkdir()
    with (
        embedded_configuration(first_root) as first_configuration,
        embedded_configuration(second_root) as second_configuration,
        running_server(first_root, {**first_configuration, **shared_redis}) as first,
        running_server(second_root, {**second_configuration, **shared_redis}) as second,
    ):
        async with connect(first.ws_url, proxy=None) as listener:
            body = await asyncio.to_thread(upload, second.base_url, astronaut_jpeg)
            message = json.loads(await asyncio.wait_for(listener.recv(), 5))

    assert message["type"] == "detection.created"
    assert message["id"] == body["id"]


async def test_workers_share_one_port_and_every_client_hears_every_upload(tmp_path, shared_redis, coffee_png):
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **shared_redis, "WORKERS": "2"}) as server,
    ):
        children = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout
        listeners = [await connect(server.ws_url, proxy=None) for _ in range(6)]
        bodies = [await asyncio.to_thread(upload, server.base_url, coffee_png) for _ in range(4)]
        heard = [
            [json.loads(await asyncio.wait_for(listener.recv(), 5))["id"] for _ in bodies] for listener in listeners
        ]
        for listener in listeners:
            await listener.close()

    assert len(children.split()) == 2
    assert all(ids == [body["id"] for body in bodies] for ids in heard)


def test_several_workers_without_redis_refuse_to_start():
    env = {**os.environ, "WORKERS": "3", "PORT": "0"}
    env.pop("REDIS_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "facesite.serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "WORKERS=3 needs REDIS_URL" in result.stderr
