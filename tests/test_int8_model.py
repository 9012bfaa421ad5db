"""The int8 engine: its file is what `make detector-model` makes, and it sees what the float one sees."""

import cv2
import numpy as np

from vision.detector import detect_faces
from vision.engines import INT8_MODEL
from vision.int8_model import build_int8_model

# Boxes of the same face from the two engines may differ by this many pixels a side.
BOX_TOLERANCE = 4
SURE = 0.8
MARGIN_FLOOR = 0.6


def test_the_committed_int8_model_is_what_the_command_makes():
    assert build_int8_model() == INT8_MODEL.read_bytes()


def boxes_and_confidences(bgr: np.ndarray, engine: str) -> np.ndarray:
    faces = detect_faces(bgr, min_confidence=MARGIN_FLOOR, profile="accurate", engine=engine)
    rows = [(face.box.x, face.box.y, face.box.width, face.box.height, face.confidence) for face in faces]
    return np.array(rows, dtype=float).reshape(-1, 5)


def assert_same_faces(bgr: np.ndarray) -> None:
    """Each face one engine finds clearly (SURE or more) the other finds too (MARGIN_FLOOR or more),
    its box a few pixels away at most; faces near the server's threshold (0.7) may fall either side."""
    found = {engine: boxes_and_confidences(bgr, engine) for engine in ("float", "int8")}
    for engine, other in (("float", "int8"), ("int8", "float")):
        for face in found[engine][found[engine][:, 4] >= SURE]:
            distances = np.abs(found[other][:, :4] - face[:4]).max(axis=1)
            assert distances.size and distances.min() <= BOX_TOLERANCE, (engine, face, found[other])
    assert len(found["float"]) > 0


def test_int8_finds_the_astronauts_face_where_float_does(astronaut):
    assert_same_faces(cv2.cvtColor(np.asarray(astronaut), cv2.COLOR_RGB2BGR))


def test_int8_finds_the_crowds_faces_where_float_does(crowd_jpeg):
    assert_same_faces(cv2.imdecode(np.frombuffer(crowd_jpeg, np.uint8), cv2.IMREAD_COLOR))
