"""Writes: turning an upload into a stored Detection."""

import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from detection.detector import DETECTOR_INFO, detect_faces
from detection.imaging import decode_image, draw_faces, encode_jpeg
from detection.models import Detection


def detection_create(*, image_bytes: bytes, min_confidence: float | None = None) -> Detection:
    """Detect faces in an upload and store the original, the annotated copy and the row.

    Files are written first and the row committed last, so a row never points at a missing
    file; if anything fails after the files are written, they are removed again.
    """
    started = time.perf_counter()
    image = decode_image(image_bytes, max_pixels=settings.MAX_IMAGE_PIXELS)
    faces = detect_faces(
        image.bgr,
        min_confidence=settings.DETECTOR_MIN_CONFIDENCE if min_confidence is None else min_confidence,
        max_side=settings.DETECTOR_MAX_SIDE,
    )
    annotated_jpeg = encode_jpeg(draw_faces(image.bgr, faces))
    processing_ms = (time.perf_counter() - started) * 1000

    detection = Detection(
        id=uuid.uuid4(),
        created_at=timezone.now(),
        width=image.width,
        height=image.height,
        faces=[face.as_json() for face in faces],
        face_count=len(faces),
        detector_name=DETECTOR_INFO.name,
        detector_version=DETECTOR_INFO.version,
        processing_ms=round(processing_ms, 2),
    )
    try:
        detection.original.save(f"original.{image.extension}", ContentFile(image_bytes), save=False)
        detection.annotated.save("annotated.jpg", ContentFile(annotated_jpeg), save=False)
        with transaction.atomic():
            detection.save(force_insert=True)
    except BaseException:
        _delete_files(detection)
        raise
    return detection


def _delete_files(detection: Detection) -> None:
    for field in (detection.original, detection.annotated):
        if field.name:
            field.storage.delete(field.name)
