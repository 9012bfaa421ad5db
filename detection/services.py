"""Writes: turning an upload into a stored Detection."""

import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from detection.detector import DETECTOR_NAME, DETECTOR_VERSION, detect_faces
from detection.faces import select_faces
from detection.imaging import annotate, decode_image, encode_jpeg
from detection.models import Detection


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
