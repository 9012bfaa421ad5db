"""Readiness checks: each returns None when the dependency works, or what is wrong."""

import asyncio
import uuid

import numpy as np
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from vision.detector import detect_faces


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_media_storage() -> None:
    name = default_storage.save(f"readyz/{uuid.uuid4()}.txt", ContentFile(b"ok"))
    default_storage.delete(name)


async def _round_trip(layer) -> None:
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    await asyncio.wait_for(layer.receive(channel), timeout=2)


def check_channel_layer() -> None:
    async_to_sync(_round_trip)(get_channel_layer())


def check_detector() -> None:
    # The uploads' own model session (same thread count and engine), not a second one held just for probes.
    detect_faces(
        np.zeros((64, 64, 3), dtype=np.uint8),
        min_confidence=0.5,
        profile="fast",
        threads=settings.DETECTOR_THREADS,
        engine=settings.DETECTOR_ENGINE,
    )


READINESS_CHECKS = {
    "database": check_database,
    "media_storage": check_media_storage,
    "channel_layer": check_channel_layer,
    "detector": check_detector,
}


def readiness() -> dict[str, str]:
    """Every check's outcome: "ok", or the error it raised."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as error:  # a readiness probe reports failures, it does not raise them
            results[name] = f"error: {type(error).__name__}: {error}"
        else:
            results[name] = "ok"
    return results
