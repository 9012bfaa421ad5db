"""The image work of one detection: decode, find the faces, keep the ones asked for, draw, encode.

Knows images and faces, nothing about storage or HTTP: the detection task runs it on a stored
original, and `make bench-load` runs the very same work without a server as its floor.
"""

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from vision.detector import detect_faces
from vision.faces import Face, select_faces
from vision.imaging import DecodedImage, DecodeLimits, annotate, decode_image, encode_jpeg


def decode_limits(*, max_pixels: int | None = None) -> DecodeLimits:
    """The server's limits on the decoding work of one upload (settings), with at most `max_pixels`
    (a live stream's frame) instead of MAX_IMAGE_PIXELS."""
    return DecodeLimits(
        max_pixels=max_pixels or settings.MAX_IMAGE_PIXELS,
        max_pixels_per_byte=settings.MAX_PIXELS_PER_BYTE,
        ratio_floor_pixels=settings.PIXELS_PER_BYTE_FLOOR,
        max_jpeg_scans=settings.MAX_JPEG_SCANS,
    )


@dataclass(frozen=True)
class AnnotatedPhoto:
    image: DecodedImage
    faces: list[Face]
    annotated_jpeg: bytes


def find_faces(
    bgr: np.ndarray,
    *,
    min_confidence: float,
    profile: str,
    min_face_size: int = 0,
    max_faces: int | None = None,
) -> list[Face]:
    """The faces asked for in a decoded photo (a stream's or a camera's frame), on the server's detector settings."""
    faces = detect_faces(
        bgr,
        min_confidence=min_confidence,
        profile=profile,
        threads=settings.DETECTOR_THREADS,
        engine=settings.DETECTOR_ENGINE,
    )
    return select_faces(faces, min_face_size=min_face_size, max_faces=max_faces)


def annotate_photo(
    image_bytes: bytes,
    *,
    min_confidence: float,
    profile: str,
    min_face_size: int = 0,
    max_faces: int | None = None,
    style: str = "box",
) -> AnnotatedPhoto:
    image = decode_image(image_bytes, limits=decode_limits())
    faces = find_faces(
        image.bgr, min_confidence=min_confidence, profile=profile, min_face_size=min_face_size, max_faces=max_faces
    )
    return AnnotatedPhoto(image, faces, encode_jpeg(annotate(image.bgr, faces, style=style)))
