"""While a slow detection runs, the server keeps answering: other requests and websocket messages
do not queue behind it. Under ASGI, Django 5.2 runs each request's sync code in a thread of that
request's own (asgiref's ThreadSensitiveContext), not in one thread shared by the process; the
detection slots in `detection.services` bound how many detections run at once."""

import asyncio
import io
import json
import time

import requests
from PIL import Image
from skimage import data
from websockets.asyncio.client import connect

from tests.live_server import embedded_configuration, pending_detections, running_server, wait_for


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def timed(call, *args, **kwargs) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    return time.monotonic() - started, response


async def test_a_slow_detection_does_not_hold_up_reads_or_broadcasts(tmp_path):
    slow_photo = jpeg(Image.fromarray(data.astronaut()).resize((6000, 4000)))  # seconds with `accurate`
    quick_photo = jpeg(Image.fromarray(data.coffee()))
    http = requests.Session()
    http.trust_env = False

    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
        async with connect(server.ws_url, proxy=None) as listener:
            slow = asyncio.create_task(
                asyncio.to_thread(
                    timed,
                    http.post,
                    server.base_url + "/image",
                    files={"image": slow_photo},
                    data={"profile": "accurate"},
                )
            )
            # Observed, not assumed: the slow one is stored pending, so the application is detecting it.
            await asyncio.to_thread(wait_for, lambda: pending_detections(server), 30, "slow upload in flight")

            health_seconds, health = await asyncio.to_thread(timed, http.get, server.base_url + "/healthz")
            list_seconds, listing = await asyncio.to_thread(timed, http.get, server.base_url + "/image")
            quick_sent = time.monotonic()
            quick = await asyncio.to_thread(
                http.post, server.base_url + "/image", files={"image": quick_photo}, data={"profile": "fast"}
            )
            first_message = json.loads(await asyncio.wait_for(listener.recv(), 10))
            quick_heard = time.monotonic() - quick_sent
            slow_seconds, slow_response = await slow

    assert (health.status_code, listing.status_code, quick.status_code, slow_response.status_code) == (
        200,
        200,
        201,
        201,
    )
    # Everything else answers well within the slow upload's time.
    assert health_seconds < 0.5 and list_seconds < 0.5, (health_seconds, list_seconds, slow_seconds)
    assert max(health_seconds, list_seconds) < slow_seconds / 3, (health_seconds, list_seconds, slow_seconds)
    assert first_message["id"] == quick.json()["id"]  # heard before the slow one finished
    assert quick_heard < slow_seconds - 0.5, (quick_heard, slow_seconds)
