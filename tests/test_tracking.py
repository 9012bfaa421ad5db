"""Faces followed across frames (vision/tracking.py): what a track's box does when the detector finds
a face late, misses it for a while, or loses it; and ids kept on a real clip's detections."""

from collections.abc import Callable

import cv2
import pytest

from tests.cameras import FACES_PHOTO
from tests.conftest import require_dev_set
from vision.clips import pan_frames
from vision.detector import detect_faces
from vision.faces import Box, Face
from vision.tracking import HOLD_FRAMES, KEEP_CONFIDENCE, FaceTracker, TrackedBox

WIDTH, HEIGHT = 640, 360


def face_at(x: float, y: float = 100, size: int = 80, confidence: float = 0.9) -> Face:
    box = Box(round(x), round(y), size, size)
    return Face(box=box, confidence=confidence, landmarks=((box.x + 20, box.y + 30),) * 5)


def run(tracker: FaceTracker, frames: int, faces_at: Callable[[int], list[Face]]) -> dict[int, list[TrackedBox]]:
    """Each frame's boxes, fed as process_video feeds the tracker: a round every detect_every-th
    frame and at the last, boxes taken once the tracker is ready for them."""
    boxes: dict[int, list[TrackedBox]] = {}
    for frame in range(frames):
        if frame % tracker.detect_every == 0 or frame == frames - 1:
            tracker.detected(frame, faces_at(frame))
        while len(boxes) < frames and tracker.ready(len(boxes)):
            boxes[len(boxes)] = tracker.boxes(len(boxes))
    tracker.finish()
    while len(boxes) < frames:
        boxes[len(boxes)] = tracker.boxes(len(boxes))
    return boxes


def covers(tracked: TrackedBox, face: Face) -> bool:
    box, inner = tracked.box, face.box
    return (
        box.x <= inner.x
        and box.y <= inner.y
        and box.x + box.width >= inner.x + inner.width
        and box.y + box.height >= inner.y + inner.height
    )


def test_a_face_missed_for_a_few_rounds_is_covered_all_along_by_one_track():
    # A face moving right 3 px a frame; the detector misses it in rounds 5 to 7 (frames 10 to 15).
    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=2)
    boxes = run(tracker, 40, lambda frame: [] if 10 <= frame <= 15 else [face_at(100 + 3 * frame)])

    assert len(tracker.tracks) == 1
    for frame in range(40):
        assert len(boxes[frame]) == 1, frame
        # Interpolated through the gap, so where the face is, within a pixel or two of rounding.
        assert abs(boxes[frame][0].box.x - (100 + 3 * frame - 4)) <= 3, frame
    assert [box.detected for box in boxes[10]] == [False]
    assert [box.detected for box in boxes[16]] == [True]


def test_a_track_is_covered_from_before_the_round_that_found_it():
    # Every 4th frame detected: the face appears at frame 9, the detector finds it at frame 12.
    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=4)
    boxes = run(tracker, 30, lambda frame: [face_at(200)] if frame >= 12 else [])

    covered = [frame for frame in range(30) if boxes[frame]]
    assert covered[0] <= 9
    assert covered[-1] == 29
    assert tracker.tracks[0].first_frame == covered[0]


def test_a_lost_face_is_held_growing_for_a_while_then_ends():
    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=1)
    boxes = run(tracker, 40, lambda frame: [face_at(300)] if frame <= 10 else [])

    held = [boxes[frame][0] for frame in range(11, 40) if boxes[frame]]
    assert len(held) == HOLD_FRAMES - 1
    sizes = [box.box.width for box in held]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    assert all(covers(box, face_at(300)) for box in held)
    assert tracker.tracks[0].last_frame == 10 + HOLD_FRAMES - 1
    assert not boxes[10 + HOLD_FRAMES]


def test_a_weaker_detection_keeps_a_track_going_but_never_starts_one():
    # The face is found surely, then only at 0.2 (motion blur) for 30 frames: one track covers it all.
    # A second face only ever found at 0.2 gets no track.
    def faces(frame: int) -> list[Face]:
        sure = 0.9 if frame < 10 else 0.2
        return [face_at(100 + 2 * frame, confidence=sure), face_at(450, y=200, confidence=0.2)]

    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=2)
    boxes = run(tracker, 40, faces)

    assert len(tracker.tracks) == 1
    assert all(len(boxes[frame]) == 1 and covers(boxes[frame][0], faces(frame)[0]) for frame in range(40))

    # Below KEEP_CONFIDENCE a face is no evidence at all: the track ends after its hold.
    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=2)
    weaker = run(tracker, 40, lambda frame: [face_at(100, confidence=0.9 if frame < 10 else KEEP_CONFIDENCE / 2)])
    assert not weaker[39]


def test_every_box_has_a_margin_around_the_detected_face():
    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=3)
    boxes = run(tracker, 12, lambda frame: [face_at(250)])

    assert all(covers(boxes[frame][0], face_at(250)) and boxes[frame][0].box.width > 80 for frame in range(12))


def test_two_faces_passing_each_other_keep_their_ids():
    # One moves right, the other left, at different heights: their boxes overlap midway.
    def faces(frame: int) -> list[Face]:
        return [face_at(50 + 8 * frame, y=100), face_at(450 - 8 * frame, y=140)]

    tracker = FaceTracker(width=WIDTH, height=HEIGHT, min_confidence=0.5, detect_every=2)
    boxes = run(tracker, 50, faces)

    assert len(tracker.tracks) == 2
    first, second = tracker.tracks
    assert first.as_json()["boxes"][0][1] < first.as_json()["boxes"][-1][1]  # the one moving right
    assert second.as_json()["boxes"][0][1] > second.as_json()["boxes"][-1][1]
    assert all(len(boxes[frame]) == 2 for frame in range(50))


@pytest.fixture(scope="module")
def panning_frames() -> list:
    """30 frames of a camera panning over two people, whom the detector misses now and then."""
    photo = cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))
    return list(pan_frames(photo, width=640, height=480, frames=120))[10:40]


def test_a_real_clips_faces_are_followed_through_the_detectors_misses(panning_frames):
    tracker = FaceTracker(width=640, height=480, detect_every=3, min_confidence=0.75)
    detections = {
        frame: detect_faces(bgr, min_confidence=0.75, profile="fast", threads=1)
        for frame, bgr in enumerate(panning_frames)
        if frame % 3 == 0 or frame == len(panning_frames) - 1
    }
    boxes = run(tracker, len(panning_frames), lambda frame: detections[frame])

    assert any(len(faces) < 2 for faces in detections.values())  # the detector alone leaves gaps
    two_people = sorted(tracker.tracks, key=lambda track: -len(track.boxes))[:2]
    for track in two_people:
        as_json = track.as_json()
        assert set(as_json) == {"id", "first_frame", "last_frame", "boxes"}
        assert [row[0] for row in as_json["boxes"]] == list(range(len(panning_frames)))
    assert all(len(boxes[frame]) >= 2 for frame in boxes)
