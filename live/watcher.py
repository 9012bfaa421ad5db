"""The camera watcher (`python manage.py watch_cameras`): one thread per enabled camera, each reading
its stream (vision.video), looking for faces in a few frames a second, and storing a detection (or
only announcing it) when faces appear. The camera table is read again every few seconds, so cameras
added, changed or disabled in the admin are picked up without a restart.

Each camera's state is written to its row and announced on /faces (`camera.status`) when it changes;
nothing is logged per frame. A camera that cannot be read is retried after a backoff that doubles
from BACKOFF_FIRST_SECONDS to BACKOFF_MAX_SECONDS, and starts over from the first once it sends frames.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from detection.broadcast import broadcast
from detection.models import Detection
from detection.pipeline import find_faces
from detection.services import detection_create, slots
from live.models import Camera
from live.selectors import cameras_to_watch
from live.services import camera_record_frames, camera_set_state
from vision.errors import DetectionError, VideoUnavailable
from vision.faces import Face
from vision.imaging import encode_jpeg
from vision.video import open_video, sampled_frames

logger = logging.getLogger(__name__)

POLL_SECONDS = 3.0  # how soon a camera added, changed or disabled in the admin is picked up
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
OPEN_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 10.0  # a stream that sends nothing this long has stalled
FRAMES_WRITE_SECONDS = 5.0  # last_frame_at and sampled_fps are written this often
# What a camera's thread works from: a change to any of these in the admin restarts it.
SETTINGS_FIELDS = (
    "name",
    "url",
    "sample_fps",
    "profile",
    "min_confidence",
    "min_face_size",
    "cooldown_seconds",
    "store_snapshots",
    "annotate_style",
)


def watcher_name() -> str:
    """Who watches a camera (its row's watched_by): this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def camera_settings(camera: Camera) -> tuple:
    return tuple(getattr(camera, name) for name in SETTINGS_FIELDS)


@dataclass
class FacesAppear:
    """When a frame's faces are worth a detection: faces after a frame without, more faces than in
    the frame before, or the same faces still there `cooldown` seconds after the last one stored."""

    cooldown: float
    previous_count: int = 0
    last_fired: float | None = None

    def seen(self, count: int, *, now: float) -> bool:
        cooled_down = self.last_fired is not None and now - self.last_fired >= self.cooldown
        fires = count > 0 and (count > self.previous_count or cooled_down)
        self.previous_count = count
        if fires:
            self.last_fired = now
        return fires


@dataclass
class FrameRate:
    """Frames sampled per second over the last FRAMES_WRITE_SECONDS, and whether it is time to write it."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0

    def add(self) -> float | None:
        """Count a frame; the rate once a window is over (and a new one begins), else None."""
        self.frames += 1
        elapsed = time.monotonic() - self.started
        if elapsed < FRAMES_WRITE_SECONDS:
            return None
        rate = self.frames / elapsed
        self.started, self.frames = time.monotonic(), 0
        return rate


class CameraWatch(threading.Thread):
    """One camera's thread: connect, sample, detect; on failure retry after a backoff; until stopped."""

    def __init__(
        self, camera: Camera, *, watched_by: str, timeouts: tuple[float, float], decode_all: bool = False
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        self.camera = camera
        self.watched_by = watched_by
        self.open_timeout, self.read_timeout = timeouts
        self.decode_all = decode_all  # every frame, as a plain decoder would: the benchmark's comparison
        self.frames_sampled = 0
        self.stopping = threading.Event()
        self.state = ""
        self.last_error = ""

    def stop(self) -> None:
        """Asks the thread to end: at its next frame, or once a read times out."""
        self.stopping.set()

    def run(self) -> None:
        try:
            self.watch_until_stopped()
        except Exception:  # the database out of reach: the watcher starts the camera again at its next look
            logger.exception("camera %s: its thread failed", self.camera.name)
        finally:
            connection.close()  # this thread's own database connection

    def watch_until_stopped(self) -> None:
        backoff = BACKOFF_FIRST_SECONDS
        self.set_state(Camera.State.CONNECTING)
        while not self.stopping.is_set():
            try:
                connected = self.watch()
                error = "The stream ended."
            except DetectionError as failure:
                connected, error = self.state == Camera.State.CONNECTED, failure.message
            except Exception:
                logger.exception("camera %s: unexpected failure", self.camera.name)
                connected, error = self.state == Camera.State.CONNECTED, "Unexpected failure; see the watcher's log."
            if self.stopping.is_set():
                return
            if connected:
                backoff = BACKOFF_FIRST_SECONDS
            self.set_state(Camera.State.RETRYING, last_error=f"{error} Retrying in {backoff:g} s.")
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    def watch(self) -> bool:
        """Read the stream until it ends or the thread is stopped; whether any frame came."""
        camera = self.camera
        appear = FacesAppear(cooldown=camera.cooldown_seconds)
        rate = FrameRate()
        connected = False
        with open_video(camera.url, open_timeout=self.open_timeout, read_timeout=self.read_timeout) as video:
            for frame in sampled_frames(video, fps=camera.sample_fps, decode_all=self.decode_all):
                if self.stopping.is_set():
                    break
                self.frames_sampled += 1
                if not connected:
                    connected = True
                    self.set_state(Camera.State.CONNECTED)
                faces = self.faces(frame.bgr)
                if appear.seen(len(faces), now=time.monotonic()):
                    self.faces_appeared(frame.bgr, faces)
                if (sampled_fps := rate.add()) is not None:
                    self.record_frames(sampled_fps)
        if not connected and not self.stopping.is_set():
            raise VideoUnavailable("The stream ended before its first frame.")
        return connected

    def faces(self, bgr: np.ndarray) -> list[Face]:
        camera = self.camera
        # A turn of this process's detection slots: in the server's process, cameras and uploads share the cores.
        with slots.turn(f"camera:{camera.name}"):
            return find_faces(
                bgr, min_confidence=camera.min_confidence, profile=camera.profile, min_face_size=camera.min_face_size
            )

    def faces_appeared(self, bgr: np.ndarray, faces: list[Face]) -> None:
        camera = self.camera
        if not camera.store_snapshots:
            event = {"type": "camera.faces", "camera": camera.name, "width": bgr.shape[1], "height": bgr.shape[0]}
            broadcast({**event, "faces": [face.as_json() for face in faces]}, what=f"camera {camera.name}'s faces")
            return
        try:
            # Stored as an upload is, so it is detected, drawn and announced as one (`detection.created`).
            detection_create(
                image_bytes=encode_jpeg(bgr),
                profile=camera.profile,
                min_confidence=camera.min_confidence,
                min_face_size=camera.min_face_size,
                annotate_style=camera.annotate_style,
                source=Detection.Source.CAMERA,
                camera=camera,
            )
        except DetectionError as error:  # busy, or the queue out of reach: this frame is given up
            logger.warning(
                "camera detection not stored",
                extra={"fields": {"camera": camera.name, "error_code": error.code, "error_message": error.message}},
            )

    def record_frames(self, sampled_fps: float) -> None:
        camera_record_frames(camera_id=self.camera.id, last_frame_at=timezone.now(), sampled_fps=sampled_fps)

    def set_state(self, state: str, *, last_error: str = "") -> None:
        if (state, last_error) == (self.state, self.last_error) or self.stopping.is_set():
            return
        self.state, self.last_error = state, last_error
        logger.info(
            "camera state", extra={"fields": {"camera": self.camera.name, "state": state, "last_error": last_error}}
        )
        camera_set_state(camera_id=self.camera.id, state=state, last_error=last_error, watched_by=self.watched_by)


class CameraWatcher:
    """Keeps one CameraWatch running per enabled camera of its shard, as the table says."""

    def __init__(
        self,
        *,
        shard: int = 1,
        shards: int = 1,
        poll_seconds: float = POLL_SECONDS,
        timeouts: tuple[float, float] = (OPEN_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
    ) -> None:
        self.shard, self.shards = shard, shards
        self.poll_seconds = poll_seconds
        self.timeouts = timeouts
        self.watched_by = watcher_name()
        self.watches: dict[int, CameraWatch] = {}

    def run(self, stopping: threading.Event) -> None:
        """Until `stopping` is set; then every camera is stopped and marked idle."""
        try:
            while not stopping.is_set():
                try:
                    self.sync()
                except DatabaseError:
                    logger.exception("reading the cameras failed; trying again in %g s", self.poll_seconds)
                stopping.wait(self.poll_seconds)
        finally:
            self.stop_all()

    def sync(self) -> None:
        close_old_connections()  # as around a request: a connection dropped or too old is not reused
        wanted = {camera.id: camera for camera in cameras_to_watch(shard=self.shard, shards=self.shards)}
        for camera_id, watch in list(self.watches.items()):
            camera = wanted.get(camera_id)
            if camera is None or camera_settings(camera) != camera_settings(watch.camera) or not watch.is_alive():
                self.stop_watching(camera_id, idle=camera is None)
        for camera_id, camera in wanted.items():
            if camera_id not in self.watches:
                self.watches[camera_id] = CameraWatch(camera, watched_by=self.watched_by, timeouts=self.timeouts)
                self.watches[camera_id].start()

    def stop_watching(self, camera_id: int, *, idle: bool) -> None:
        """Stop a camera's thread (it ends on its own, at most a read timeout later); `idle`: no
        thread takes over, and the row says so."""
        watch = self.watches.pop(camera_id)
        watch.stop()
        if idle:
            camera_set_state(camera_id=camera_id, state=Camera.State.IDLE, last_error="", watched_by="")
            logger.info("camera state", extra={"fields": {"camera": watch.camera.name, "state": Camera.State.IDLE}})

    def stop_all(self) -> None:
        for watch in self.watches.values():
            watch.stop()
        deadline = time.monotonic() + self.timeouts[1] + 1
        for watch in self.watches.values():
            watch.join(timeout=max(0.0, deadline - time.monotonic()))
        for camera_id in list(self.watches):
            self.stop_watching(camera_id, idle=True)
