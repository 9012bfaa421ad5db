"""SIGTERM during uploads: the ones the application is working on complete, their broadcasts go out,
then the process exits."""

import asyncio
import io
import json
import signal
import time

import requests
from PIL import Image
from skimage import data
from websockets.asyncio.client import connect

from tests.live_server import embedded_configuration, pending_detections, running_server, wait_for

UPLOADS = 3


def slow_photo() -> bytes:
    # Large enough that each upload takes a good fraction of a second with `accurate`.
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((3000, 3000)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def post(url: str, photo: bytes) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.post(url, files={"image": photo}, data={"profile": "accurate"}, timeout=60)


async def test_sigterm_lets_uploads_in_flight_finish_and_broadcast(tmp_path):
    photo = slow_photo()
    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
        async with connect(server.ws_url, proxy=None) as listener:
            uploads = [
                asyncio.create_task(asyncio.to_thread(post, server.base_url + "/image", photo)) for _ in range(UPLOADS)
            ]
            # Observed, not assumed: all three are stored pending, so the application is working on them.
            await asyncio.to_thread(wait_for, lambda: pending_detections(server) == UPLOADS, 30, "uploads in flight")
            server.process.send_signal(signal.SIGTERM)
            started = time.monotonic()

            responses = await asyncio.gather(*uploads)
            received = [json.loads(await asyncio.wait_for(listener.recv(), 5)) for _ in responses]
            exit_code = await asyncio.to_thread(server.process.wait, 30)

    assert [response.status_code for response in responses] == [201] * UPLOADS
    assert {message["id"] for message in received} == {response.json()["id"] for response in responses}
    assert exit_code == 0
    assert time.monotonic() - started < 30
    assert f"waiting for {UPLOADS} request(s) in flight" in server.output()
