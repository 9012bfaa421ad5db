"""Writes: turning an upload into a stored Detection."""

import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.db import transaction
from django.utils import timezone

from detection.models import Detection
from detection.pipeline import annotate_photo, decode_limits
from detection.slots import DetectionSlots
from vision.detector import DETECTOR_NAME, DETECTOR_VERSION
from vision.errors import DetectionError, ProcessingFailed, QueueUnavailable, WorkerLost
from vision.imaging import ANONYMISING_STYLES, EXTENSION_BY_FORMAT, open_image

if TYPE_CHECKING:
    from live.models import Camera

logger = logging.getLogger(__name__)

# One process's detections: DETECTION_WORKERS at once (the cores), DETECTION_QUEUE more waiting.
slots = DetectionSlots(running=settings.DETECTION_WORKERS, waiting=settings.DETECTION_QUEUE)


def detection_create(
    *,
    image_bytes: bytes,
    profile: str | None = None,
    min_confidence: float | None = None,
    min_face_size: int = 0,
    max_faces: int | None = None,
    annotate_style: str = "box",
    source: str = Detection.Source.UPLOAD,
    camera: "Camera | None" = None,
) -> Detection:
    """Store an upload (or a stream's snapshot, or a camera's frame) as a pending detection and hand it
    to the task backend (detection.tasks).

    Here only the checks the header allows (size, format, pixels); decoding and detecting are the
    task's. A queue backend gets the task once the row is committed, and the detection comes back
    pending. The immediate backend (embedded mode) runs it here and now, within this process's
    detection slots: the detection comes back done, or its failure is raised and nothing is kept.
    """
    from detection.tasks import process_detection, runs_in_request  # the tasks module imports this one

    image = open_image(image_bytes, limits=decode_limits())
    default_profile, default_min_confidence = detector_defaults(annotate_style=annotate_style)
    detection = Detection(
        id=uuid.uuid4(),
        created_at=timezone.now(),
        status=Detection.Status.PENDING,
        detector_name=DETECTOR_NAME,
        detector_version=DETECTOR_VERSION,
        detector_profile=profile or default_profile,
        min_confidence=default_min_confidence if min_confidence is None else min_confidence,
        min_face_size=min_face_size,
        max_faces=max_faces,
        annotate_style=annotate_style,
        source=source,
        camera=camera,
    )
    extension = EXTENSION_BY_FORMAT[image.format]
    if not runs_in_request():
        _store(detection, image_bytes, extension=extension)
        transaction.on_commit(partial(_enqueue, detection))
        return detection

    with slots.admitted():
        _store(detection, image_bytes, extension=extension)
        try:
            # The row is committed first, and the task commits its outcome on its own: no
            # transaction stays open while it detects (SQLite would lock out every other upload).
            process_detection.enqueue(str(detection.id))
            detection.refresh_from_db()
            if detection.status != Detection.Status.DONE:
                raise DetectionError.recorded(detection.error_code, detection.error_message)
        except BaseException:
            # The failure is this request's answer: the row and its files go (a failure is never
            # announced in embedded mode, see signals).
            Detection.objects.filter(id=detection.id).delete()
            # At once: the delete signal waits for a commit, which an outer transaction may never make.
            detection_delete_files(detection)
            raise
    return detection


def detector_defaults(*, annotate_style: str) -> tuple[str, float]:
    """The profile and threshold a request gets unless it sets them: when the copy is to hide the
    faces, a missed face is worse than a patch of background blurred, so recall comes first."""
    if annotate_style in ANONYMISING_STYLES:
        return settings.ANONYMISE_PROFILE, settings.ANONYMISE_MIN_CONFIDENCE
    return settings.DETECTOR_PROFILE, settings.DETECTOR_MIN_CONFIDENCE


def _store(detection: Detection, image_bytes: bytes, *, extension: str) -> None:
    """The original, then the pending row: a row never points at a missing file."""
    detection.original.save(f"original.{extension}", ContentFile(image_bytes), save=False)
    try:
        detection.save(force_insert=True)
    except BaseException:
        detection_delete_files(detection)
        raise


def _enqueue(detection: Detection) -> None:
    from detection.tasks import process_detection

    try:
        process_detection.enqueue(str(detection.id))
    except Exception as error:
        # The queue is out of reach: fail the upload now rather than keep a detection no worker will see.
        logger.exception("enqueueing detection %s failed", detection.id)
        Detection.objects.filter(id=detection.id).delete()  # its files follow (signals)
        raise QueueUnavailable(
            "The detection queue cannot be reached; the photo was not kept. Try again in a moment."
        ) from error


def detection_process(*, detection_id: str) -> None:
    """Run a pending detection: decode the stored original, find the faces, store the annotated copy.

    The detection ends done, or failed with the reason: a DetectionError's code and message, or
    ProcessingFailed for anything unexpected (logged with the id), so none stays pending.
    """
    detection = Detection.objects.filter(id=detection_id, status=Detection.Status.PENDING).first()
    if detection is None:
        logger.warning("detection %s is not pending (deleted, or already run): nothing to do", detection_id)
        return
    try:
        _detect(detection)
    except DetectionError as error:
        _fail(detection_id, error)
    except Exception:
        logger.exception("detection %s failed unexpectedly", detection_id)
        _fail(detection_id, ProcessingFailed())


def _detect(detection: Detection) -> None:
    with detection.original.open("rb") as original:
        image_bytes = original.read()
    with slots.turn():
        started = time.perf_counter()
        photo = annotate_photo(
            image_bytes,
            min_confidence=detection.min_confidence,
            profile=detection.detector_profile,
            min_face_size=detection.min_face_size,
            max_faces=detection.max_faces,
            style=detection.annotate_style,
        )
        processing_ms = (time.perf_counter() - started) * 1000

    detection.width, detection.height = photo.image.width, photo.image.height
    detection.faces = [face.as_json() for face in photo.faces]
    detection.face_count = len(photo.faces)
    detection.processing_ms = round(processing_ms, 2)
    detection.status = Detection.Status.DONE
    try:
        detection.annotated.save("annotated.jpg", ContentFile(photo.annotated_jpeg), save=False)
        # update_fields with "status": the save the broadcast waits for (signals).
        detection.save(update_fields=["annotated", "width", "height", "faces", "face_count", "processing_ms", "status"])
    except BaseException:
        # The copy, or the part of it that a write cut short (a full disk) left behind: the storage
        # does not remove that part, and the field never names it.
        annotated = detection.annotated
        annotated.storage.delete(annotated.name or annotated.field.generate_filename(detection, "annotated.jpg"))
        raise
    logger.info("detection done", extra={"fields": detection_log_fields(detection)})


def detection_abandon(*, detection_id: str) -> None:
    """A queued detection whose worker died before finishing: failed, unless it got finished after all."""
    if Detection.objects.filter(id=detection_id, status=Detection.Status.PENDING).exists():
        _fail(detection_id, WorkerLost())


def _fail(detection_id: str, error: DetectionError) -> None:
    # A fresh copy: none of what _detect set on its own before failing.
    detection = Detection.objects.get(id=detection_id)
    detection.status = Detection.Status.FAILED
    detection.error_code, detection.error_message = error.code, error.message
    detection.save(update_fields=["status", "error_code", "error_message"])
    logger.warning(
        "detection failed",
        extra={"fields": {"detection_id": detection_id, "error_code": error.code, "error_message": error.message}},
    )


def detection_log_fields(detection: Detection) -> dict:
    """What a log line says about a detection; no image bytes, nothing about the client."""
    return {
        "detection_id": str(detection.id),
        "status": detection.status,
        "width": detection.width,
        "height": detection.height,
        "face_count": detection.face_count,
        "ms": detection.processing_ms,
        "profile": detection.detector_profile,
    }


def detection_delete_files(detection: Detection) -> None:
    """Remove a detection's images from media storage (the row is someone else's business)."""
    for field in (detection.original, detection.annotated):
        if field.name:
            delete_stored_file(field.storage, field.name)


def delete_stored_file(storage: Storage, name: str) -> None:
    """Delete a stored file, and the folders under detections/ (or videos/) it leaves empty (its own,
    then its date's)."""
    storage.delete(name)
    if not isinstance(storage, FileSystemStorage):
        return  # object stores have no folders
    folder = PurePosixPath(name).parent
    while len(folder.parts) > 1 and not _may_receive_uploads(folder):  # never detections/ (videos/) itself
        try:
            os.rmdir(storage.path(str(folder)))
        except OSError:  # not empty (or already gone): nor are the folders above it
            return
        folder = folder.parent


def _may_receive_uploads(folder: PurePosixPath) -> bool:
    """Whether uploads may be writing into this date folder (detections/YYYY[/MM[/DD]]) now: today's,
    and yesterday's for an upload that began before midnight. Such a folder is kept however empty:
    removing it between an upload's creating it and creating its own folder inside would fail the upload."""
    today = timezone.now().date()
    recent = [f"{day:%Y/%m/%d}" for day in (today, today - timedelta(days=1))]
    dates = "/".join(folder.parts[1:])
    return any(recent_date.startswith(dates) for recent_date in recent)


def detection_prune(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Delete detections created more than `older_than` ago (their files follow, see signals), or
    with `dry_run` only count them."""
    cutoff = timezone.now() - older_than
    if dry_run:
        return Detection.objects.filter(created_at__lt=cutoff).count()
    deleted = 0
    # In batches, so a first prune of a large archive does not hold one huge transaction.
    while ids := list(Detection.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:500]):
        with transaction.atomic():
            Detection.objects.filter(id__in=ids).delete()
        deleted += len(ids)
    return deleted


# An upload writes its files before its row, and an embedded one stays pending until detected: a
# file or a pending row younger than this may be an upload in flight, not an orphan (unless the
# server is known to be stopped).
REPAIR_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class MediaReport:
    # Stored files no detection or video of this database points at. Another database sharing the
    # media folder may own them: not proven orphans.
    orphan_files: list[str]
    missing_files: list[str]  # detections (ids) with a file gone
    unfinished: list[str]  # embedded mode: pending detections (ids), which only a crash leaves behind
    missing_video_files: list[str] = dataclasses.field(default_factory=list)  # videos (ids) with a file gone
    # Running videos (ids) whose progress has not moved for longer than the grace: their job died.
    unfinished_videos: list[str] = dataclasses.field(default_factory=list)


def media_check(*, min_age: timedelta = REPAIR_GRACE) -> MediaReport:
    """Compare the files under detections/ and videos/ with the rows that should own them, leaving
    out files and pending rows younger than `min_age`."""
    from detection.tasks import runs_in_request  # the tasks module imports this one
    from videos.services import video_media_check  # videos build on detections, not the other way

    settled = timezone.now() - min_age
    referenced: set[str] = set()
    missing = []
    for detection in Detection.objects.only("id", "original", "annotated").iterator():
        names = [field.name for field in (detection.original, detection.annotated) if field]  # no copy until done
        referenced.update(names)
        if not all(default_storage.exists(name) for name in names):
            missing.append(str(detection.id))
    videos = video_media_check(min_age=min_age)
    referenced |= videos.referenced
    orphans = [
        name
        for folder in ("detections", "videos")
        for name in _stored_names(folder)
        if name not in referenced and default_storage.get_modified_time(name) < settled
    ]
    # With a queue, a pending detection waits for a worker; in embedded mode nothing will ever run it.
    pending = Detection.objects.filter(status=Detection.Status.PENDING, created_at__lt=settled)
    pending = pending.values_list("id", flat=True)
    unfinished = [str(detection_id) for detection_id in pending] if runs_in_request() else []
    return MediaReport(
        orphan_files=sorted(orphans),
        missing_files=sorted(missing),
        unfinished=sorted(unfinished),
        missing_video_files=videos.missing_files,
        unfinished_videos=videos.unfinished,
    )


def media_repair(report: MediaReport, *, delete_orphan_files: bool = False) -> None:
    """Remove detections and videos whose files are gone (they could never be shown) and unfinished
    ones (they never will be); the files of those removed follow (signals). Orphan files only when
    the caller says the media folder is this database's alone (`delete_orphan_files`)."""
    from videos.models import Video

    if delete_orphan_files:
        for name in report.orphan_files:
            delete_stored_file(default_storage, name)
    Detection.objects.filter(id__in=[*report.missing_files, *report.unfinished]).delete()
    Video.objects.filter(id__in=[*report.missing_video_files, *report.unfinished_videos]).delete()


def _stored_names(folder: str) -> Iterator[str]:
    if not default_storage.exists(folder):
        return
    folders, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for name in folders:
        yield from _stored_names(f"{folder}/{name}")
