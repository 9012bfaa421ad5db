"""The annotated copy stays readable: marks in proportion to each face and the image, and confidence
labels only where they cover no other face and no other label (on a real crowd)."""

import cv2
import numpy as np
import pytest

from vision.detector import detect_faces
from vision.faces import Box, Face
from vision.imaging import LABEL_TEXT_COLOUR, LANDMARK_COLOUR, draw_faces, label_places, mark_sizes


@pytest.fixture(scope="module")
def crowd(crowd_jpeg) -> tuple[np.ndarray, list[Face]]:
    """The group photo of ~100 people, and its faces down to the anonymising threshold: the densest case."""
    bgr = cv2.imdecode(np.frombuffer(crowd_jpeg, np.uint8), cv2.IMREAD_COLOR)
    faces = detect_faces(bgr, min_confidence=0.4, profile="balanced")
    assert len(faces) > 80
    return bgr, faces


def corners(box: Box) -> tuple[int, int, int, int]:
    return box.x, box.y, box.x + box.width, box.y + box.height


def overlap(first: Box, second: Box) -> bool:
    left, top, right, bottom = corners(first)
    other_left, other_top, other_right, other_bottom = corners(second)
    return left < other_right and other_left < right and top < other_bottom and other_top < bottom


def pixels_of(image: np.ndarray, colour: tuple[int, int, int], box: Box) -> np.ndarray:
    region = image[box.y : box.y + box.height, box.x : box.x + box.width].astype(int)
    return np.abs(region - colour).sum(axis=2) < 60


def test_labels_cover_no_other_face_and_no_other_label_on_a_crowd(crowd):
    bgr, faces = crowd
    height, width = bgr.shape[:2]

    places = label_places(faces, width=width, height=height)

    placed = [(index, place) for index, place in enumerate(places) if place is not None]
    assert len(placed) > len(faces) / 2  # most faces keep their number
    for index, place in placed:
        assert 0 <= place.x <= width - place.width
        assert 0 <= place.y <= height - place.height
        assert not any(overlap(place, face.box) for other, face in enumerate(faces) if other != index)
        assert not any(overlap(place, other_place) for other, other_place in placed if other != index)


def test_no_label_text_lands_on_a_face_of_the_crowd(crowd):
    bgr, faces = crowd
    blank = np.full_like(bgr, 255)

    annotated = draw_faces(blank, faces)

    covered = [face for face in faces if pixels_of(annotated, LABEL_TEXT_COLOUR, face.box).any()]
    assert covered == []
    assert pixels_of(annotated, LABEL_TEXT_COLOUR, Box(0, 0, bgr.shape[1], bgr.shape[0])).sum() > 1000  # labels drawn


def test_landmark_dots_leave_a_small_face_visible(crowd):
    bgr, faces = crowd
    blank = np.full_like(bgr, 255)

    annotated = draw_faces(blank, faces)

    for face in faces:
        assert pixels_of(annotated, LANDMARK_COLOUR, face.box).mean() < 0.1, face.box


@pytest.mark.parametrize(
    ("face_side", "long_side"),
    [(12, 1024), (20, 1024), (60, 1024), (300, 1024), (30, 6000), (1000, 6000), (3000, 6000)],
)
def test_marks_grow_with_the_face_within_the_image_scale(face_side, long_side):
    sizes = mark_sizes(Box(0, 0, face_side, face_side), long_side=long_side)

    assert 1 <= sizes.line <= max(1, face_side // 20)
    assert 2 * sizes.dot_radius + 1 <= max(1, face_side // 10)
    assert 8 <= sizes.text_height <= max(8, face_side // 3)
    # Readable where the photo is seen shrunk to a screen: ~1/100 of the long side for a large face.
    if face_side >= 300:
        assert sizes.text_height >= min(face_side // 5, long_side // 100)


def face_at(x: int, y: int, side: int) -> Face:
    return Face(box=Box(x, y, side, side), confidence=0.9, landmarks=((x + side // 2, y + side // 2),) * 5)


def test_a_label_with_no_room_is_left_out():
    # A face against the top edge, with neighbours touching it left and right and one right under it.
    middle, left, right, below = face_at(100, 0, 60), face_at(39, 0, 60), face_at(161, 0, 60), face_at(95, 61, 70)

    places = label_places([middle, left, right, below], width=400, height=300)

    assert places[0] is None
    assert places[3] is not None and places[3].y >= below.box.y + below.box.height
