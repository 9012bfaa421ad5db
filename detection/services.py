"""Writes: turning an upload into a stored Detection."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from detection.detector import DETECTOR_NAME, DETECTOR_VERSION, detect_faces
from detection.faces import select_faces
from detection.imaging import annotate, decode_image, encode_jpeg
from detection.models import Detection
from detection.slots import DetectionSlots

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
) -> Detection:
    """Detect faces in an upload and store the original, the annotated copy and the row.

    Files are written first and the row committed last, so a row never points at a missing
    file; if anything fails after the files are written, they are removed again.
    """
    profile = profile or settings.DETECTOR_PROFILE
    with slots.slot():
        started = time.perf_counter()
        image = decode_image(image_bytes, max_pixels=settings.MAX_IMAGE_PIXELS)
        faces = detect_faces(
            image.bgr,
            min_confidence=settings.DETECTOR_MIN_CONFIDENCE if min_confidence is None else min_confidence,
            profile=profile,
            threads=settings.DETECTOR_THREADS,
        )
        faces = select_faces(faces, min_face_size=min_face_size, max_faces=max_faces)
        annotated_jpeg = encode_jpeg(annotate(image.bgr, faces, style=annotate_style))
        processing_ms = (time.perf_counter() - started) * 1000

    detection = Detection(
        id=uuid.uuid4(),
        created_at=timezone.now(),
        width=image.width,
        height=image.height,
        faces=[face.as_json() for face in faces],
        face_count=len(faces),
        detector_name=DETECTOR_NAME,
        detector_version=DETECTOR_VERSION,
        detector_profile=profile,
        annotate_style=annotate_style,
        processing_ms=round(processing_ms, 2),
    )
    try:
        detection.original.save(f"original.{image.extension}", ContentFile(image_bytes), save=False)
        detection.annotated.save("annotated.jpg", ContentFile(annotated_jpeg), save=False)
        with transaction.atomic():
            detection.save(force_insert=True)
    except BaseException:
        detection_delete_files(detection)
        raise
    return detection


def detection_delete_files(detection: Detection) -> None:
    """Remove a detection's images from media storage (the row is someone else's business)."""
    for field in (detection.original, detection.annotated):
        if field.name:
            field.storage.delete(field.name)


def detection_prune(*, older_than: timedelta) -> int:
    """Delete detections created more than `older_than` ago; their files follow (see signals)."""
    cutoff = timezone.now() - older_than
    deleted = 0
    # In batches, so a first prune of a large archive does not hold one huge transaction.
    while ids := list(Detection.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:500]):
        with transaction.atomic():
            Detection.objects.filter(id__in=ids).delete()
        deleted += len(ids)
    return deleted


@dataclass(frozen=True)
class MediaReport:
    orphan_files: list[str]  # stored files no detection points at
    missing_files: list[str]  # detections (ids) with a file gone


def media_check() -> MediaReport:
    """Compare the files under detections/ with the rows that should own them."""
    referenced: set[str] = set()
    missing = []
    for detection in Detection.objects.only("id", "original", "annotated").iterator():
        names = [detection.original.name, detection.annotated.name]
        referenced.update(names)
        if not all(default_storage.exists(name) for name in names):
            missing.append(str(detection.id))
    orphans = [name for name in _stored_names("detections") if name not in referenced]
    return MediaReport(orphan_files=sorted(orphans), missing_files=sorted(missing))


def media_repair(report: MediaReport) -> None:
    """Remove orphan files, and detections whose files are gone (they could never be shown)."""
    for name in report.orphan_files:
        default_storage.delete(name)
    Detection.objects.filter(id__in=report.missing_files).delete()


def _stored_names(folder: str) -> Iterator[str]:
    if not default_storage.exists(folder):
        return
    folders, files = default_storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for name in folders:
        yield from _stored_names(f"{folder}/{name}")
