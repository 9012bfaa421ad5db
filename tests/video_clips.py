"""Tiny real videos for the videos/ tests: a dev photo with two faces filmed by a panning camera,
made with PyAV (vision.clips), in H.264 MP4 or another container, with a tone for a sound track."""

from pathlib import Path

import cv2
import numpy as np

from tests.cameras import FACES_PHOTO
from tests.conftest import require_dev_set
from vision.clips import pan_frames, write_video
from vision.video import write_h264

WIDTH, HEIGHT = 320, 240


def faces_photo() -> np.ndarray:
    return cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))


def faces_clip(path: Path, *, seconds: float = 1, fps: int = 10, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """An H.264 MP4 of a camera panning across a photo of two faces."""
    frames = pan_frames(faces_photo(), width=width, height=height, frames=round(seconds * fps))
    write_h264(path, frames, fps=fps, keyframe_interval=fps)
    return path


def clip_in(
    path: Path, *, container: str, codec: str, seconds: float = 1, fps: int = 10, audio: str | None = None
) -> Path:
    """The same panning camera in another container and codec (vision.clips.write_video), with a
    tone in the `audio` encoder for as long as the video."""
    frames = pan_frames(faces_photo(), width=WIDTH, height=HEIGHT, frames=round(seconds * fps))
    return write_video(path, frames, fps=fps, container=container, codec=codec, audio=audio, audio_seconds=seconds)


def wait_until(condition, what: str, *, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def drain_videos(seconds: float = 120) -> None:
    """Wait until this process's background thread has run every video enqueued so far (embedded
    mode: one thread, in order). Without touching the database meanwhile: the tests' in-memory SQLite
    refuses a write while another connection reads (a server's file database with WAL does not)."""
    from videos.tasks import process_video_task

    process_video_task.get_backend().executor.submit(lambda: None).result(timeout=seconds)


def slow_clip(path: Path) -> Path:
    """Seconds of work for the `accurate` profile on every frame (detect_every=1): 6 s of 640x480 at
    25 fps, long enough to act while it runs (cancel it, kill or stop its server)."""
    return faces_clip(path, seconds=6, fps=25, width=640, height=480)


SLOW_OPTIONS = {"profile": "accurate", "detect_every": 1, "annotate": "blur"}
