"""Reads."""

import uuid

from django.db.models import QuerySet

from videos.models import Video


def video_list(*, status: str | None = None) -> QuerySet[Video]:
    """Newest first; with `status`, only those in that state."""
    videos = Video.objects.order_by("-created_at", "-id")
    if status is not None:
        videos = videos.filter(status=status)
    return videos


def video_get(*, video_id: uuid.UUID | str) -> Video | None:
    return Video.objects.filter(id=video_id).first()
