import cv2
import numpy as np
from PIL import Image
from skimage import data

from detection.detector import detect_faces
from tests.conftest import ASTRONAUT_FACE, overlap


def bgr(image: Image.Image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def test_it_finds_the_astronauts_face(astronaut):
    faces = detect_faces(bgr(astronaut), min_confidence=0.7, max_side=640)

    assert len(faces) == 1
    face = faces[0].as_json()
    assert overlap(face["box"], ASTRONAUT_FACE) > 0.6
    assert 0.7 <= face["confidence"] <= 1
    assert len(face["landmarks"]) == 5
    box = face["box"]
    for x, y in face["landmarks"]:
        assert box["x"] <= x <= box["x"] + box["width"]
        assert box["y"] <= y <= box["y"] + box["height"]


def test_it_finds_no_face_in_a_photo_of_coffee():
    assert detect_faces(bgr(Image.fromarray(data.coffee())), min_confidence=0.7, max_side=640) == []


def test_it_maps_boxes_back_to_full_resolution(astronaut):
    # Four times larger than the detector's input: boxes must come back in the large image's pixels.
    large = astronaut.resize((2048, 2048))

    faces = detect_faces(bgr(large), min_confidence=0.7, max_side=640)

    assert len(faces) == 1
    scaled_face = tuple(4 * value for value in ASTRONAUT_FACE)
    assert overlap(faces[0].as_json()["box"], scaled_face) > 0.6


def test_it_drops_faces_below_min_confidence(astronaut):
    confidence = detect_faces(bgr(astronaut), min_confidence=0.5, max_side=640)[0].confidence

    assert detect_faces(bgr(astronaut), min_confidence=confidence + 0.01, max_side=640) == []


def test_it_lists_faces_most_confident_first():
    # The cameraman and the astronaut side by side: two faces of different confidence.
    camera = Image.fromarray(data.camera()).convert("RGB")
    pair = Image.new("RGB", (1024, 512))
    pair.paste(Image.fromarray(data.astronaut()), (0, 0))
    pair.paste(camera, (512, 0))

    faces = detect_faces(bgr(pair), min_confidence=0.5, max_side=1024)

    assert len(faces) == 2
    assert faces[0].confidence >= faces[1].confidence
