"""Scoring a detector against ground truth the way WIDER FACE and PASCAL VOC do.

Pure functions over plain data: the benchmark command feeds them, tests check them on synthetic boxes.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

SETTINGS = ("easy", "medium", "hard")
# WIDER's settings are nested: a face counts in its own level's setting and every harder one.
COUNTED_LEVELS = {"easy": {"easy"}, "medium": {"easy", "medium"}, "hard": {"easy", "medium", "hard"}}
IOU_THRESHOLD = 0.5
# A face counts as hidden by anonymising when this share of its box is covered.
HIDDEN_SHARE = 0.8


@dataclass(frozen=True)
class TruthBox:
    bbox: tuple[float, float, float, float]  # x, y, width, height
    level: str | None
    invalid: bool = False

    def counts_in(self, setting: str) -> bool:
        return not self.invalid and self.level in COUNTED_LEVELS[setting]


@dataclass(frozen=True)
class Scored:
    bbox: tuple[float, float, float, float]
    confidence: float


@dataclass(frozen=True)
class SettingScore:
    average_precision: float
    precision: float  # at the threshold
    recall: float  # at the threshold
    hidden: float  # share of the faces anonymising would hide at the threshold (see hidden_faces)
    faces: int  # counted ground-truth boxes


def iou_matrix(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) box in `boxes` with every one in `others`."""
    if len(boxes) == 0 or len(others) == 0:
        return np.zeros((len(boxes), len(others)))
    a = boxes[:, None, :]
    b = others[None, :, :]
    width = np.clip(
        np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None
    )
    height = np.clip(
        np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None
    )
    intersection = width * height
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - intersection
    return intersection / np.maximum(union, 1e-9)


def match_image(detections: Sequence[Scored], truth: Sequence[TruthBox], setting: str) -> list[tuple[float, bool]]:
    """(confidence, is_true_positive) for each detection that is not on an ignore region.

    VOC rules: detections in falling confidence each take the ground-truth box they overlap most;
    at IoU >= 0.5 it is a hit if that box counts and is still free, a false positive if the box
    was already taken (a second detection of one face), and ignored if the box is an ignore region.
    """
    ordered = sorted(detections, key=lambda detection: detection.confidence, reverse=True)
    if not truth:
        return [(detection.confidence, False) for detection in ordered]
    overlaps = iou_matrix(
        np.array([detection.bbox for detection in ordered], dtype=float).reshape(-1, 4),
        np.array([box.bbox for box in truth], dtype=float),
    )
    counts = [box.counts_in(setting) for box in truth]
    taken = [False] * len(truth)
    outcomes = []
    for detection, row in zip(ordered, overlaps, strict=True):
        best = int(np.argmax(row))
        if row[best] < IOU_THRESHOLD:
            outcomes.append((detection.confidence, False))
        elif not counts[best]:
            continue
        elif taken[best]:
            outcomes.append((detection.confidence, False))
        else:
            taken[best] = True
            outcomes.append((detection.confidence, True))
    return outcomes


def hidden_faces(detections: Sequence[Scored], truth: Sequence[TruthBox], setting: str, *, margin: float) -> int:
    """How many counted faces are at least HIDDEN_SHARE covered by the detections' boxes, each grown
    by `margin` of its size a side: what anonymising with those boxes would hide."""
    hidden = 0
    for box in truth:
        x, y, width, height = box.bbox
        if not box.counts_in(setting) or width < 1 or height < 1:
            continue
        covered = np.zeros((round(height), round(width)), dtype=bool)  # the face's pixels
        for detection in detections:
            left, top, grown_width, grown_height = detection.bbox
            margin_x, margin_y = grown_width * margin, grown_height * margin
            # The grown box, in the face's own pixels.
            columns = slice(max(0, round(left - margin_x - x)), max(0, round(left + grown_width + margin_x - x)))
            rows = slice(max(0, round(top - margin_y - y)), max(0, round(top + grown_height + margin_y - y)))
            covered[rows, columns] = True
        hidden += covered.mean() >= HIDDEN_SHARE
    return hidden


def average_precision(outcomes: Iterable[tuple[float, bool]], faces: int) -> float:
    """All-point interpolated area under the precision/recall curve (VOC 2010 onwards)."""
    ordered = sorted(outcomes, key=lambda outcome: outcome[0], reverse=True)
    if faces == 0:
        return 0.0
    hits = np.array([hit for _, hit in ordered], dtype=float)
    true_positives = np.cumsum(hits)
    false_positives = np.cumsum(1 - hits)
    recall = np.concatenate([[0.0], true_positives / faces, [1.0]])
    precision = np.concatenate([[0.0], true_positives / np.maximum(true_positives + false_positives, 1e-9), [0.0]])
    # Make precision monotonically decreasing, then sum the rectangles under it.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def score_setting(
    images: Iterable[tuple[Sequence[Scored], Sequence[TruthBox]]],
    setting: str,
    threshold: float,
    *,
    margin: float = 0.0,
) -> SettingScore:
    outcomes: list[tuple[float, bool]] = []
    faces = hidden = 0
    for detections, truth in images:
        outcomes += match_image(detections, truth, setting)
        faces += sum(box.counts_in(setting) for box in truth)
        kept = [detection for detection in detections if detection.confidence >= threshold]
        hidden += hidden_faces(kept, truth, setting, margin=margin)
    kept = [hit for confidence, hit in outcomes if confidence >= threshold]
    hits = sum(kept)
    return SettingScore(
        average_precision=average_precision(outcomes, faces),
        precision=hits / len(kept) if kept else 0.0,
        recall=hits / faces if faces else 0.0,
        hidden=hidden / faces if faces else 0.0,
        faces=faces,
    )
