"""Reads."""

import uuid
from datetime import datetime

from django.db.models import QuerySet

from detection.models import Detection


def detection_list(*, after: datetime | None = None, status: str | None = None) -> QuerySet[Detection]:
    """Newest first; with `after`, only those created later (how clients catch up after a disconnect);
    with `status`, only those in that state."""
    detections = Detection.objects.select_related("camera").order_by("-created_at", "-id")
    if after is not None:
        detections = detections.filter(created_at__gt=after)
    if status is not None:
        detections = detections.filter(status=status)
    return detections


def detection_get(*, detection_id: uuid.UUID) -> Detection | None:
    return Detection.objects.select_related("camera").filter(id=detection_id).first()
