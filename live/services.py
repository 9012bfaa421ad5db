"""Writes: a camera's state, as its watcher sees it, announced on /faces when it changes."""

from datetime import datetime

from django.utils import timezone

from detection.broadcast import broadcast
from live.models import Camera


def camera_status_event(camera: Camera) -> dict:
    """The `camera.status` message /faces clients get when a camera's state changes."""
    return {
        "type": "camera.status",
        "camera": camera.name,
        "state": camera.state,
        "last_error": camera.last_error,
        "last_frame_at": camera.last_frame_at.isoformat() if camera.last_frame_at else None,
        "sampled_fps": camera.sampled_fps,
    }


def camera_set_state(*, camera_id: int, state: str, last_error: str, watched_by: str) -> None:
    """Record a camera's new state (or new error) and announce it; a camera deleted meanwhile is left alone."""
    updated = Camera.objects.filter(id=camera_id).update(
        state=state, state_changed_at=timezone.now(), last_error=last_error, watched_by=watched_by
    )
    if updated:
        camera = Camera.objects.get(id=camera_id)
        broadcast(camera_status_event(camera), what=f"camera {camera.name}'s status")


def camera_record_frames(*, camera_id: int, last_frame_at: datetime, sampled_fps: float) -> None:
    """How a connected camera is doing, for the admin: written every few seconds, not announced."""
    Camera.objects.filter(id=camera_id).update(last_frame_at=last_frame_at, sampled_fps=round(sampled_fps, 2))
