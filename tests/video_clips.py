"""Tiny real videos for the videos/ tests: a dev photo with faces (or one without) filmed by a
panning camera, made with PyAV; with a tone for a sound track; in other containers; cut short."""

import fractions
from pathlib import Path

import av
import cv2
import numpy as np

from tests.cameras import FACES_PHOTO
from tests.conftest import require_dev_set
from vision.clips import pan_frames
from vision.video import write_h264

WIDTH, HEIGHT = 320, 240


def faces_photo() -> np.ndarray:
    return cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))


def faces_clip(path: Path, *, seconds: float = 1, fps: int = 10, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """An H.264 MP4 of a camera panning across a photo of two faces."""
    frames = pan_frames(faces_photo(), width=width, height=height, frames=round(seconds * fps))
    write_h264(path, frames, fps=fps, keyframe_interval=fps)
    return path


def clip_in(path: Path, *, container: str, codec: str, seconds: float = 1, fps: int = 10, audio: bool = False) -> Path:
    """The same panning camera in another container and codec (e.g. matroska + libx264, avi + mjpeg,
    webm + libvpx), with a 440 Hz tone as its sound track when `audio`."""
    frames = list(pan_frames(faces_photo(), width=WIDTH, height=HEIGHT, frames=round(seconds * fps)))
    with av.open(str(path), "w", format=container) as output:
        video = output.add_stream(codec, rate=fps)
        video.width, video.height = WIDTH, HEIGHT
        video.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        sound = None
        if audio:
            sound = output.add_stream("aac" if container in ("mp4", "mov") else "libopus", rate=48000)
            sound.layout = "mono"
        for bgr in frames:
            output.mux(video.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")))
        output.mux(video.encode(None))
        if sound is not None:
            samples_per_frame = 960
            total = round(seconds * 48000)
            for start in range(0, total, samples_per_frame):
                times = (np.arange(start, start + samples_per_frame) / 48000).astype(np.float32)
                tone = (0.2 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)[np.newaxis, :]
                frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 48000, start, fractions.Fraction(1, 48000)
                output.mux(sound.encode(frame))
            output.mux(sound.encode(None))
    return path


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
