"""Reads."""

import uuid

from django.db.models import QuerySet

from detection.models import Detection


def detection_list() -> QuerySet[Detection]:
    return Detection.objects.order_by("-created_at", "-id")


def detection_get(*, detection_id: uuid.UUID) -> Detection | None:
    return Detection.objects.filter(id=detection_id).first()
