"""The ground truth `make bench-video` makes (clips panning over photos, their faces known in every
frame) and how it scores what the pipeline anonymised."""

import cv2
import numpy as np
import pytest

from tests.conftest import CROWD_PHOTO, require_dev_set
from vision.detector import detect_faces
from vision.evaluation import TruthBox
from vision.faces import Box, Face
from vision.imaging import ANONYMISE_MARGIN, blur_faces
from vision.video_evaluation import (
    DARK_FRAMES,
    NARROWEST_VIEW,
    FrameFace,
    SharedDetections,
    TruthClip,
    View,
    camera_views,
    drawn_regions,
    frame_faces,
    grown,
    render_clip,
    score_clip,
)

GREY = 128
# Squares of plain colour standing for faces, far enough apart and from the edges.
SQUARES = {(0, 0, 255): (100, 100, 60, 60), (0, 255, 0): (400, 150, 50, 70), (255, 0, 0): (250, 300, 80, 80)}


def squares_photo() -> tuple[np.ndarray, list[TruthBox]]:
    photo = np.full((480, 640, 3), GREY, np.uint8)
    truth = []
    for colour, (x, y, width, height) in SQUARES.items():
        photo[y : y + height, x : x + width] = colour
        truth.append(TruthBox((x, y, width, height), "easy"))
    return photo, truth


def test_true_boxes_follow_the_camera_over_the_photo():
    photo, truth = squares_photo()
    frames, clip = render_clip(photo, truth, width=320, height=180, frames=30, seed=3)
    checked = 0
    for index, (frame, faces) in enumerate(zip(frames, clip.faces, strict=True)):
        if index in clip.degraded:
            continue
        for face in faces:
            x, y, width, height = face.truth.bbox
            if face.truth.invalid or width < 8 or height < 8:
                continue
            colour = list(SQUARES)[face.face]
            inside = frame[
                round(y + height / 4) : round(y + 3 * height / 4), round(x + width / 4) : round(x + 3 * width / 4)
            ]
            assert np.abs(inside.reshape(-1, 3).mean(axis=0) - colour).max() < 8, (index, face)
            # Just outside the box (where it is in the frame): the photo's grey.
            below = frame[round(y + height) + 2 : round(y + height) + 4, round(x + 2) : round(x + width - 2)]
            if below.size:
                assert np.abs(below.astype(int) - GREY).max() < 30, (index, face)
            checked += 1
    assert checked > 30


def test_the_camera_pans_and_zooms_within_the_photo():
    views = camera_views(640, 480, width=320, height=180, frames=30, rng=np.random.default_rng(3))
    widths = [view.width for view in views]

    assert max(widths) == pytest.approx(640) and min(widths) == pytest.approx(640 * NARROWEST_VIEW)
    assert widths == sorted(widths) or widths == sorted(widths, reverse=True)
    assert abs(views[0].x - views[-1].x) + abs(views[0].y - views[-1].y) > 20
    for view in views:
        assert view.x >= 0 and view.x + view.width <= 640 + 1e-6
        assert view.y >= 0 and view.y + view.width * 180 / 320 <= 480 + 1e-6


def test_a_face_mostly_out_of_the_frame_is_an_ignore_region():
    truth = [TruthBox((0, 0, 100, 100), "easy"), TruthBox((200, 0, 100, 100), "medium")]
    # The view starts 60 px into the first face and ends 30 px into the second: 40% and 30% of them seen.
    faces = frame_faces(truth, View(x=60, y=0, width=170), width=170, height=100)

    assert [(face.face, face.truth.invalid) for face in faces] == [(0, True), (1, True)]
    faces = frame_faces(truth, View(x=40, y=0, width=230), width=230, height=100)
    assert [(face.face, face.truth.invalid, face.truth.bbox) for face in faces] == [
        (0, False, (0.0, 0.0, 60.0, 100.0)),
        (1, False, (160.0, 0.0, 70.0, 100.0)),
    ]


def test_some_frames_are_degraded_as_real_video_is():
    photo, truth = squares_photo()
    frames, clip = render_clip(photo, truth, width=320, height=180, frames=75, seed=5)
    frames = list(frames)
    kinds = list(clip.degraded.values())
    assert kinds.count("dark") == DARK_FRAMES and kinds.count("motion_blur") == 6 and kinds.count("jpeg") == 6
    dark = sorted(index for index, kind in clip.degraded.items() if kind == "dark")
    assert dark == list(range(dark[0], dark[0] + DARK_FRAMES))
    clean = [index for index in range(75) if index not in clip.degraded]
    assert max(frames[index].mean() for index in dark) < 0.6 * min(frames[index].mean() for index in clean)
    # Motion blur softens the squares' edges: fewer sharp steps than the clean frames around it.
    blurred = next(index for index, kind in clip.degraded.items() if kind == "motion_blur")
    neighbour = min(clean, key=lambda index: abs(index - blurred))

    def sharpness(index: int) -> float:
        return cv2.Laplacian(cv2.cvtColor(frames[index], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()

    assert sharpness(blurred) < 0.7 * sharpness(neighbour)


def clip_of_boxes(frames: int = 20) -> TruthClip:
    """A 200x100 clip with an easy face in every frame and a hard one in the second half."""
    faces = []
    for index in range(frames):
        frame = [FrameFace(0, TruthBox((20.0, 20.0, 40.0, 40.0), "easy"))]
        if index >= frames // 2:
            frame.append(FrameFace(1, TruthBox((120.0, 30.0, 20.0, 20.0), "hard")))
        faces.append(frame)
    return TruthClip(width=200, height=100, fps=25, faces=faces, degraded={})


def test_nothing_anonymised_covers_no_face_and_leaks_every_frame():
    score = score_clip(clip_of_boxes(), [[] for _ in range(20)]).as_json()

    assert score["settings"]["easy"] == {
        "coverage": 0.0,
        "face_frames": 20,
        "uncovered_face_frames": 20,
        "frames_with_faces": 20,
        "leaking_frames": 20,
        "longest_leak_frames": 20,
    }
    assert score["settings"]["hard"]["face_frames"] == 30 and score["settings"]["hard"]["coverage"] == 0.0
    assert score["over_blur"] == 0.0


def test_the_whole_frame_anonymised_covers_every_face_and_is_nearly_all_over_blur():
    score = score_clip(clip_of_boxes(), [[Box(0, 0, 200, 100)] for _ in range(20)]).as_json()

    for setting in ("easy", "medium", "hard"):
        assert score["settings"][setting]["coverage"] == 1.0
        assert score["settings"][setting]["leaking_frames"] == score["settings"][setting]["longest_leak_frames"] == 0
    faces_area = (20 * 1600 + 10 * 400) / (20 * 200 * 100)
    assert score["over_blur"] == pytest.approx(1 - faces_area)


def test_a_face_missed_for_two_frames_is_a_two_frame_leak():
    regions = [[Box(20, 20, 40, 40)] + ([Box(120, 30, 20, 20)] if index >= 10 else []) for index in range(20)]
    regions[12] = regions[13] = [Box(120, 30, 20, 20)]  # the easy face missed twice in a row
    regions[5] = [Box(20, 20, 40, 31)]  # 77.5% of it covered: not hidden
    score = score_clip(clip_of_boxes(), regions).as_json()

    easy = score["settings"]["easy"]
    assert easy["uncovered_face_frames"] == 3 and easy["leaking_frames"] == 3 and easy["longest_leak_frames"] == 2
    assert score["settings"]["hard"]["coverage"] == pytest.approx(27 / 30)
    assert score["over_blur"] == 0.0


def test_the_regions_scored_are_those_blurring_changes():
    """drawn_regions grows a track's box as vision.imaging's blur does: every pixel it changes is inside."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = Box(30, 40, 50, 30)
    changed = np.argwhere((blur_faces(frame, [Face(box, 0.9, ())]) != frame).any(axis=2))
    track = {"id": 1, "first_frame": 0, "last_frame": 0, "boxes": [[0, box.x, box.y, box.width, box.height, 1]]}

    (region,) = drawn_regions([track], frames=1, width=160, height=120, margin=ANONYMISE_MARGIN)[0]
    assert region == grown(box, margin=ANONYMISE_MARGIN, width=160, height=120)
    top, left = changed.min(axis=0)
    bottom, right = changed.max(axis=0)
    assert (left, top, right + 1 - left, bottom + 1 - top) == (region.x, region.y, region.width, region.height)


@pytest.mark.parametrize("profile", ["fast", "balanced"])
def test_shared_detections_are_the_detectors_own_at_every_threshold(profile):
    photo = cv2.imread(str(require_dev_set() / "images" / CROWD_PHOTO))
    photo = cv2.resize(photo, (640, round(photo.shape[0] * 640 / photo.shape[1])))
    shared = SharedDetections(profile=profile, floor=0.3)

    for threshold in (0.3, 0.45, 0.6):
        faces = shared.faces(photo, min_confidence=threshold)
        assert faces == detect_faces(photo, min_confidence=threshold, profile=profile, threads=1)
        assert faces
    assert shared.detected == 1
    with pytest.raises(ValueError):
        shared.faces(photo, min_confidence=0.2)
