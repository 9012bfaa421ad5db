"""Telling every /faces client about a finished detection, through the channel layer."""

import asyncio
import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from detection.models import Detection
from detection.serializers import DetectionSerializer

FACES_GROUP = "faces"
# A channel layer that does not answer (a hung Redis) must not hold the upload or task that broadcasts.
BROADCAST_TIMEOUT_SECONDS = 5
MESSAGE_TYPES = {Detection.Status.DONE: "detection.created", Detection.Status.FAILED: "detection.failed"}
logger = logging.getLogger(__name__)


class ServerLoop:
    """The event loop of this process's web server (Daphne's), once the server runs: a broadcast is
    handed to it and the upload answers without waiting for it. Elsewhere (a queue worker, a command,
    a test without the server) there is none, and a broadcast is sent and waited for."""

    loop: asyncio.AbstractEventLoop | None = None

    def running(self) -> asyncio.AbstractEventLoop | None:
        return self.loop if self.loop is not None and self.loop.is_running() else None


server_loop = ServerLoop()


def faces_message(event: dict) -> dict:
    """The channel layer message that relays `event` to every /faces client (see detection.relay).

    Encoded once here: the layer copies a string for nothing, and a process's clients share it."""
    return {"type": "faces.broadcast", "text": json.dumps(event)}


async def send_to_group(message: dict) -> None:
    async with asyncio.timeout(BROADCAST_TIMEOUT_SECONDS):
        await get_channel_layer().group_send(FACES_GROUP, message)


async def send_to_group_logged(message: dict, what: str) -> None:
    try:
        await send_to_group(message)
    except Exception:
        logger.exception("broadcast of %s failed", what)


def broadcast(event: dict, *, what: str) -> None:
    """Send an event to every /faces client; a broken channel layer must not fail the upload, task or
    camera that broadcasts (it is logged, as the broadcast of `what`)."""
    message = faces_message(event)
    if loop := server_loop.running():
        # Not waited for: the upload's answer does not depend on how many listen, nor on the layer.
        asyncio.run_coroutine_threadsafe(send_to_group_logged(message, what), loop)
        return
    async_to_sync(send_to_group_logged)(message, what)


def broadcast_detection(detection: Detection) -> None:
    """Called once the row is committed (signals), so no client hears of it before it is there."""
    event = {"type": MESSAGE_TYPES[detection.status], **DetectionSerializer(detection).data}
    broadcast(event, what=f"detection {detection.id}")
