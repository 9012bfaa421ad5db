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


def faces_message(event: dict) -> dict:
    """The channel layer message that relays `event` to every /faces client (see detection.relay).

    Encoded once here: the layer copies a string for nothing, and a process's clients share it."""
    return {"type": "faces.broadcast", "text": json.dumps(event)}


async def send_to_group(message: dict) -> None:
    async with asyncio.timeout(BROADCAST_TIMEOUT_SECONDS):
        await get_channel_layer().group_send(FACES_GROUP, message)


def broadcast_detection(detection: Detection) -> None:
    """Send the detection to the group; a broken channel layer must not fail the upload or the task."""
    event = {"type": MESSAGE_TYPES[detection.status], **DetectionSerializer(detection).data}
    try:
        async_to_sync(send_to_group)(faces_message(event))
    except Exception:
        logger.exception("broadcast of detection %s failed", detection.id)
