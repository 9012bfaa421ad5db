"""The WIDER FACE / VOC scoring behind `make bench-detector`, on boxes small enough to check by hand."""

import pytest

from vision.evaluation import Scored, TruthBox, average_precision, hidden_faces, match_image, score_setting

FACE = TruthBox((100, 100, 40, 40), "easy")


def test_a_detection_on_a_face_is_a_hit():
    assert match_image([Scored((102, 101, 40, 40), 0.9)], [FACE], "easy") == [(0.9, True)]


def test_a_second_detection_of_the_same_face_is_a_false_positive():
    outcomes = match_image([Scored((100, 100, 40, 40), 0.8), Scored((101, 100, 40, 40), 0.9)], [FACE], "easy")

    assert outcomes == [(0.9, True), (0.8, False)]


def test_a_detection_that_overlaps_too_little_is_a_false_positive():
    assert match_image([Scored((130, 130, 40, 40), 0.9)], [FACE], "easy") == [(0.9, False)]


def test_a_detection_on_an_ignore_region_counts_neither_way():
    hard_face = TruthBox((300, 300, 10, 10), "hard")
    invalid_face = TruthBox((400, 400, 20, 20), "easy", invalid=True)
    detections = [Scored((300, 300, 10, 10), 0.9), Scored((400, 400, 20, 20), 0.8)]

    assert match_image(detections, [FACE, hard_face, invalid_face], "medium") == []
    assert match_image(detections, [FACE, hard_face, invalid_face], "hard") == [(0.9, True)]


def test_any_detection_on_a_photo_without_faces_is_a_false_positive():
    assert match_image([Scored((0, 0, 10, 10), 0.3)], [], "easy") == [(0.3, False)]


def test_average_precision_is_one_when_every_face_is_found_before_any_mistake():
    assert average_precision([(0.9, True), (0.8, True), (0.1, False)], faces=2) == pytest.approx(1.0)


def test_average_precision_is_the_area_under_the_interpolated_curve():
    # Hit, miss, hit on 4 faces: precision 1 up to recall 0.25, then 2/3 up to recall 0.5.
    outcomes = [(0.9, True), (0.8, False), (0.7, True)]

    assert average_precision(outcomes, faces=4) == pytest.approx(0.25 * 1 + 0.25 * 2 / 3)


def test_settings_are_nested_and_count_faces_and_threshold():
    truth = [FACE, TruthBox((300, 300, 30, 30), "medium"), TruthBox((500, 500, 12, 12), "hard")]
    detections = [Scored((100, 100, 40, 40), 0.95), Scored((300, 300, 30, 30), 0.5)]

    easy = score_setting([(detections, truth)], "easy", threshold=0.7)
    hard = score_setting([(detections, truth)], "hard", threshold=0.7)

    assert (easy.faces, easy.average_precision, easy.precision, easy.recall) == (1, 1.0, 1.0, 1.0)
    assert hard.faces == 3
    assert hard.average_precision == pytest.approx(2 / 3)
    assert (hard.precision, hard.recall) == (1.0, pytest.approx(1 / 3))


def test_a_face_is_hidden_when_grown_boxes_cover_most_of_it():
    # A detection over the face's middle 30x30 of 40x40 covers 56% of it; grown by 20% a side, all of it.
    centre = Scored((105, 105, 30, 30), 0.9)

    assert hidden_faces([centre], [FACE], "easy", margin=0.0) == 0
    assert hidden_faces([centre], [FACE], "easy", margin=0.2) == 1
    # Two halves together hide it; a detection elsewhere does not.
    halves = [Scored((100, 100, 20, 40), 0.9), Scored((120, 100, 20, 40), 0.9)]
    assert hidden_faces(halves, [FACE], "easy", margin=0.0) == 1
    assert hidden_faces([Scored((300, 300, 40, 40), 0.9)], [FACE], "easy", margin=0.2) == 0


def test_hidden_counts_only_detections_above_the_threshold():
    truth = [FACE, TruthBox((300, 300, 30, 30), "medium")]
    detections = [Scored((100, 100, 40, 40), 0.9), Scored((300, 300, 30, 30), 0.5)]

    assert score_setting([(detections, truth)], "medium", threshold=0.7).hidden == 0.5
    assert score_setting([(detections, truth)], "medium", threshold=0.4).hidden == 1.0
