"""Telling every /faces client about a finished detection, through the channel layer."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from detection.models import Detection
from detection.serializers import DetectionSerializer

FACES_GROUP = "faces"
MESSAGE_TYPES = {Detection.Status.DONE: "detection.created", Detection.Status.FAILED: "detection.failed"}
logger = logging.getLogger(__name__)


def broadcast_detection(detection: Detection) -> None:
    """Send the detection to the group; a broken channel layer must not fail the upload or the task."""
    message = {"type": MESSAGE_TYPES[detection.status], "detection": DetectionSerializer(detection).data}
    try:
        async_to_sync(get_channel_layer().group_send)(FACES_GROUP, message)
    except Exception:
        logger.exception("broadcast of detection %s failed", detection.id)
