"""Writes: turning an uploaded video into a stored Video, processing it, and removing it."""

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from detection.broadcast import broadcast
from detection.pipeline import find_faces
from detection.services import delete_stored_file, slots
from videos.models import Video, video_folder
from vision.detector import DETECTOR_NAME, DETECTOR_VERSION
from vision.errors import (
    DetectionError,
    ProcessingFailed,
    QueueUnavailable,
    VideoCancelled,
    VideoEmpty,
    VideoQueueFull,
    VideoTooLarge,
    WorkerLost,
)
from vision.faces import Face
from vision.video_files import VideoLimits, probe_video
from vision.video_pipeline import ProcessedVideo, VideoProgress, process_video

logger = logging.getLogger(__name__)

# The stored original's extension, from the container the probe found (never the client's name).
EXTENSION_BY_CONTAINER = {"mp4": "mp4", "mov": "mov", "matroska": "mkv", "webm": "webm", "avi": "avi"}
# Progress is saved and announced at most this often per video (clients get ~2 messages a second).
PROGRESS_SECONDS = 0.5
MESSAGE_TYPES = {
    Video.Status.RUNNING: "video.progress",
    Video.Status.DONE: "video.done",
    Video.Status.FAILED: "video.failed",
}
# Set when this process stops (facesite.serve's graceful stop, a worker's SIGTERM): its running video
# stops within about a second and goes back to pending, to run again when the server is back (or, in
# queue mode, on the next worker: it is queued again).
stopping = threading.Event()
# The videos this process is running now (their ids).
_running: set[str] = set()


def running_here() -> bool:
    """Whether this process is in the middle of a video (a graceful stop waits for it to stop)."""
    return bool(_running)


def video_limits() -> VideoLimits:
    return VideoLimits(
        max_seconds=settings.MAX_VIDEO_SECONDS, max_pixels=settings.MAX_VIDEO_PIXELS, max_fps=settings.MAX_VIDEO_FPS
    )


def too_many_video_bytes(size: int) -> VideoTooLarge:
    return VideoTooLarge(f"The video is {size} bytes; the limit is {settings.MAX_VIDEO_BYTES} bytes (MAX_VIDEO_BYTES).")


def video_create(
    *,
    upload: UploadedFile,
    annotate_style: str,
    profile: str,
    min_confidence: float,
    min_face_size: int,
    detect_every: int,
) -> Video:
    """Judge an uploaded video from its bytes (format, duration, resolution), store it as a pending
    video and hand it to the task backend (videos.tasks) once the row is committed. Processing never
    happens here: a worker (queue mode) or the server's background thread (embedded mode) does it."""
    if not upload.size:
        raise VideoEmpty("The video is empty (0 bytes).")
    if upload.size > settings.MAX_VIDEO_BYTES:
        raise too_many_video_bytes(upload.size)
    unfinished = Video.objects.filter(status__in=[Video.Status.PENDING, Video.Status.RUNNING]).count()
    if unfinished >= settings.MAX_PENDING_VIDEOS:
        raise VideoQueueFull(
            f"{unfinished} videos are waiting or being processed, as many as this server takes "
            f"(MAX_PENDING_VIDEOS); try again once some are done."
        )
    with _local_path(upload) as path:
        info = probe_video(path, limits=video_limits())
    video = Video(
        id=uuid.uuid4(),
        created_at=timezone.now(),
        status=Video.Status.PENDING,
        annotate_style=annotate_style,
        detector_profile=profile,
        min_confidence=min_confidence,
        min_face_size=min_face_size,
        detect_every=detect_every,
        detector_name=DETECTOR_NAME,
        detector_version=DETECTOR_VERSION,
        size=upload.size,
        container=info.container,
        codec=info.codec,
        width=info.width,
        height=info.height,
        rotation=info.rotation,
        fps=info.fps,
        duration=info.seconds,
        has_audio=info.has_audio,
        frames_total=info.frames,
    )
    upload.seek(0)
    # A temporary upload is moved into the media folder, not copied (FileSystemStorage).
    video.original.save(f"original.{EXTENSION_BY_CONTAINER.get(info.container, 'video')}", upload, save=False)
    try:
        video.save(force_insert=True)
    except BaseException:
        video_delete_files(video)
        raise
    transaction.on_commit(partial(_enqueue, video))
    return video


@contextmanager
def _local_path(upload: UploadedFile) -> Iterator[Path]:
    """The upload as a file on disk: where it already is (a large upload), else written to one."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(suffix=".upload") as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield Path(copy.name)


def _enqueue(video: Video) -> None:
    from videos.tasks import process_video_task  # the tasks module imports this one

    try:
        process_video_task.enqueue(str(video.id))
    except Exception as error:
        logger.exception("enqueueing video %s failed", video.id)
        Video.objects.filter(id=video.id).delete()  # its files follow (signals)
        raise QueueUnavailable(
            "The video queue cannot be reached; the video was not kept. Try again in a moment."
        ) from error


def video_process(*, video_id: str) -> None:
    """Run a pending video: every frame's faces found (or followed between detections), drawn or
    hidden, into an H.264 MP4 beside the original, with its faces file and a poster.

    The video ends done, or failed with the reason (a DetectionError's, or ProcessingFailed for
    anything unexpected, logged), or, when this process stops meanwhile, pending again. A video deleted
    while it runs stops within about a second. Its temporary files are removed whatever happens, and
    no partial output is ever stored as done."""
    if stopping.is_set():  # this process is stopping: the video waits for the next start (or another worker)
        logger.info("video left pending: the process is stopping", extra={"fields": {"video_id": video_id}})
        _requeue(video_id)
        return
    claimed = Video.objects.filter(id=video_id, status=Video.Status.PENDING).update(
        status=Video.Status.RUNNING, runner=process_identity(), updated_at=timezone.now()
    )
    if not claimed:
        logger.warning("video %s is not pending (deleted, or already run): nothing to do", video_id)
        return
    _running.add(video_id)
    work = work_folder(video_id)
    try:
        video = Video.objects.get(id=video_id)
        broadcast_video(video)
        work.mkdir(parents=True, exist_ok=True)
        _process(video, work)
    except VideoCancelled:
        if stopping.is_set() and _set_back_to_pending(video_id):
            logger.info("video interrupted: pending again", extra={"fields": {"video_id": video_id}})
            _requeue(video_id)
        else:
            logger.info("video cancelled", extra={"fields": {"video_id": video_id}})
    except DetectionError as error:
        _fail(video_id, error)
    except Exception:
        logger.exception("video %s failed unexpectedly", video_id)
        _fail(video_id, ProcessingFailed("The server failed to process this video; the failure has been logged."))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _running.discard(video_id)


def _process(video: Video, work: Path) -> None:
    started = time.perf_counter()
    tenant = f"video:{video.id}"

    def faces_in(bgr: np.ndarray, *, min_confidence: float) -> list[Face]:
        # A turn per detected frame: uploads and streams keep getting theirs while a video runs.
        with slots.turn(tenant):
            return find_faces(
                bgr,
                min_confidence=min_confidence,
                profile=video.detector_profile,
                min_face_size=video.min_face_size,
            )

    destination = work / "video.mp4"
    processed = process_video(
        _source_path(video, work),
        destination,
        find_faces=faces_in,
        min_confidence=video.min_confidence,
        style=video.annotate_style,
        detect_every=video.detect_every,
        limits=video_limits(),
        on_progress=ProgressReporter(video),
        should_stop=partial(_should_stop, video.id),
    )
    _store_outputs(video, processed, destination, seconds=time.perf_counter() - started)


def _source_path(video: Video, work: Path) -> Path:
    """The stored original as a local file: where it is (the media folder), or a copy (object storage)."""
    try:
        return Path(video.original.path)
    except NotImplementedError:
        copy = work / Path(video.original.name).name
        with video.original.open("rb") as original, copy.open("wb") as local:
            shutil.copyfileobj(original, local, 1024 * 1024)
        return copy


class _LocalFile(File):
    """A finished local file that storage may move into place rather than copy (FileSystemStorage)."""

    def temporary_file_path(self) -> str:
        return self.name


def _store_outputs(video: Video, processed: ProcessedVideo, destination: Path, *, seconds: float) -> None:
    folder = video_folder(video)
    try:
        with destination.open("rb") as output:
            video.video.save(f"{folder}/video.mp4", _LocalFile(output, name=str(destination)), save=False)
        faces_json = json.dumps(processed.faces_json(), separators=(",", ":")).encode()
        video.faces.save(f"{folder}/faces.json", ContentFile(faces_json), save=False)
        video.poster.save(f"{folder}/poster.jpg", ContentFile(processed.poster_jpeg), save=False)
        video.status = Video.Status.DONE
        video.track_count = len(processed.tracks)
        video.frames_done = video.frames_total = processed.frames
        video.seconds_left, video.processing_seconds = 0.0, round(seconds, 2)
        video.updated_at = timezone.now()
        fields = ["status", "video", "faces", "poster", "track_count", "frames_done", "frames_total"]
        fields += ["seconds_left", "processing_seconds", "updated_at"]
        # Only a video still running here becomes done: one deleted meanwhile stays gone.
        updated = Video.objects.filter(id=video.id, status=Video.Status.RUNNING).update(
            **{field: getattr(video, field) for field in fields}
        )
    except BaseException:
        _delete_outputs(video)
        raise
    if not updated:
        _delete_outputs(video)
        raise VideoCancelled("The video was deleted while it was being processed.")
    logger.info("video done", extra={"fields": video_log_fields(video)})
    transaction.on_commit(partial(broadcast_video, video))


def _delete_outputs(video: Video) -> None:
    for field in (video.video, video.faces, video.poster):
        if field.name:
            delete_stored_file(field.storage, field.name)


class ProgressReporter:
    """A video's on_progress: its progress saved and announced (video.progress) at most every
    PROGRESS_SECONDS."""

    def __init__(self, video: Video) -> None:
        self.video = video
        self.last = time.monotonic()  # made with the message that says the video started

    def __call__(self, progress: VideoProgress) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        video = self.video
        video.frames_done, video.frames_total = progress.frames_done, progress.frames_total
        video.processing_fps = round(progress.fps, 2)
        video.seconds_left = None if progress.seconds_left is None else round(progress.seconds_left, 1)
        video.updated_at = timezone.now()
        fields = ("frames_done", "frames_total", "processing_fps", "seconds_left", "updated_at")
        Video.objects.filter(id=video.id, status=Video.Status.RUNNING).update(
            **{field: getattr(video, field) for field in fields}
        )
        broadcast_video(video)


def _should_stop(video_id: uuid.UUID) -> bool:
    """Polled by the pipeline about once a second: the process is stopping, or the video was deleted."""
    return stopping.is_set() or not Video.objects.filter(id=video_id, status=Video.Status.RUNNING).exists()


def _requeue(video_id: str) -> None:
    """A video this process will not run after all, queued again for another worker (queue mode);
    in embedded mode the server's next start takes up the pending ones (video_resume)."""
    from videos.tasks import process_video_task, runs_in_server

    if not runs_in_server():
        process_video_task.enqueue(video_id)


def _set_back_to_pending(video_id: str) -> bool:
    return bool(
        Video.objects.filter(id=video_id, status=Video.Status.RUNNING).update(
            status=Video.Status.PENDING,
            frames_done=0,
            processing_fps=None,
            seconds_left=None,
            runner="",
            updated_at=timezone.now(),
        )
    )


def _fail(video_id: str, error: DetectionError) -> None:
    updated = (
        Video.objects.filter(id=video_id)
        .exclude(status=Video.Status.DONE)
        .update(
            status=Video.Status.FAILED,
            error_code=error.code,
            error_message=error.message,
            seconds_left=None,
            updated_at=timezone.now(),
        )
    )
    logger.warning(
        "video failed",
        extra={"fields": {"video_id": video_id, "error_code": error.code, "error_message": error.message}},
    )
    if updated:
        video = Video.objects.get(id=video_id)
        transaction.on_commit(partial(broadcast_video, video))


def video_abandon(*, video_id: str) -> None:
    """A video whose worker died before finishing: failed, unless it got finished after all."""
    if Video.objects.filter(id=video_id, status__in=[Video.Status.PENDING, Video.Status.RUNNING]).exists():
        _fail(video_id, WorkerLost("The worker processing this video stopped before it finished; upload it again."))


def video_delete(*, video_id: uuid.UUID) -> bool:
    """Delete a video, whatever its state: a running one's job notices and stops, and the files go
    once the delete is committed (signals). False when there was none."""
    deleted, _ = Video.objects.filter(id=video_id).delete()
    return bool(deleted)


def video_delete_files(video: Video) -> None:
    """Remove a video's files from media storage (the row is someone else's business)."""
    for field in video.files():
        delete_stored_file(field.storage, field.name)


def broadcast_video(video: Video) -> None:
    """Tell every /faces client where a video stands: video.progress, video.done or video.failed."""
    from videos.serializers import VideoSerializer  # the serializers need the URLs, loaded late

    if video.status not in MESSAGE_TYPES:
        return
    broadcast({"type": MESSAGE_TYPES[video.status], "video": VideoSerializer(video).data}, what=f"video {video.id}")


def video_log_fields(video: Video) -> dict:
    return {
        "video_id": str(video.id),
        "status": video.status,
        "width": video.width,
        "height": video.height,
        "frames": video.frames_total,
        "tracks": video.track_count,
        "s": video.processing_seconds,
        "profile": video.detector_profile,
    }


# Where a running video's temporary files live (its source when media is on object storage, its
# output until it is stored): a folder per video, removed when it ends, and at the server's start.
WORK_ROOT = Path(tempfile.gettempdir()) / "faces-videos"


def work_folder(video_id: uuid.UUID | str) -> Path:
    return WORK_ROOT / str(video_id)


def process_identity(pid: int | None = None) -> str:
    """This process as "host:pid:start" (start: in clock ticks since boot, so that a later process
    with the same pid, as a restarted container's, is told apart)."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the command's parentheses


def runner_alive(runner: str) -> bool:
    """Whether the process that runs a video is alive; one of another host is assumed to be."""
    host, _, rest = runner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return _start_ticks(int(pid)) == start and start != ""


def video_resume() -> None:
    """At the server's start in embedded mode: videos a crash cut short (running, by a process that
    is gone) end failed with the reason, pending ones are queued again, and temporary files that no
    running video owns are removed."""
    from videos.tasks import process_video_task

    running = Video.objects.filter(status=Video.Status.RUNNING)
    for video in running.only("id", "runner"):
        if not runner_alive(video.runner):
            crashed = "The server stopped (a crash or a kill) while processing this video; upload it again."
            _fail(str(video.id), WorkerLost(crashed))
    owned = {str(video_id) for video_id in running.values_list("id", flat=True)}
    if WORK_ROOT.exists():
        for folder in WORK_ROOT.iterdir():
            if folder.name not in owned:
                shutil.rmtree(folder, ignore_errors=True)
    pending = Video.objects.filter(status=Video.Status.PENDING).order_by("created_at")
    for video_id in pending.values_list("id", flat=True):
        process_video_task.enqueue(str(video_id))


@dataclass(frozen=True)
class VideoMediaReport:
    referenced: set[str]  # stored files that videos point at
    missing_files: list[str]  # videos (ids) with a file gone
    unfinished: list[str]  # running videos (ids) that nothing has moved for longer than the grace


def video_media_check(*, min_age: timedelta) -> VideoMediaReport:
    """What check_media needs to know about videos (detection.services.media_check)."""
    from django.core.files.storage import default_storage

    referenced: set[str] = set()
    missing = []
    for video in Video.objects.only("id", "original", "video", "faces", "poster").iterator():
        names = [field.name for field in video.files()]
        referenced.update(names)
        if not all(default_storage.exists(name) for name in names):
            missing.append(str(video.id))
    stalled = Video.objects.filter(status=Video.Status.RUNNING, updated_at__lt=timezone.now() - min_age)
    return VideoMediaReport(
        referenced=referenced,
        missing_files=sorted(missing),
        unfinished=sorted(str(video_id) for video_id in stalled.values_list("id", flat=True)),
    )
