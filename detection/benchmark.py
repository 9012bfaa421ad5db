"""The detector benchmark: the API's own decoding and detection over a folder of photos with
ground truth (WIDER FACE format, see `make bench-detector`), scored by `vision.evaluation`."""

import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

import cv2
import numpy as np

from detection.pipeline import decode_limits
from vision.detector import MODEL_FILE, MODEL_PACKAGE, detect_faces
from vision.engines import DEFAULT_ENGINE
from vision.evaluation import HIDDEN_SHARE, SETTINGS, Scored, TruthBox, score_setting
from vision.imaging import ANONYMISE_MARGIN, decode_image

# Detections down to this score feed the precision/recall curve; the default threshold is applied after.
CURVE_FLOOR = 0.05


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    truth: list[TruthBox]
    upscale: int = 1  # the benchmark enlarges the file this many times (see enlarged)


def load_dataset(folder: Path) -> list[Photo]:
    """`folder/gt.json` maps each file in `folder/images/` to its boxes; `[]` means no face."""
    ground_truth = json.loads((folder / "gt.json").read_text())
    return [
        Photo(
            name=name,
            path=folder / "images" / name,
            truth=[TruthBox(tuple(box["bbox"]), box.get("level"), bool(box.get("invalid"))) for box in boxes],
        )
        for name, boxes in sorted(ground_truth.items())
    ]


def half_of(photos: list[Photo], half: str) -> list[Photo]:
    """The odd or even half of a dataset: its photos in name order counted from 1, so "odd" is the
    1st, 3rd, 5th... Choices are made on one half and confirmed on the other."""
    return photos[0::2] if half == "odd" else photos[1::2]


def enlarged(photos: list[Photo], factor: int) -> list[Photo]:
    """The same photos `factor` times larger, truth boxes scaled to match: a 1024-px photo becomes a
    3072-px one whose faces have the detail of the original, as a stand-in for big camera photos."""
    return [
        Photo(
            photo.name,
            photo.path,
            [TruthBox(tuple(factor * value for value in box.bbox), box.level, box.invalid) for box in photo.truth],
            upscale=factor,
        )
        for photo in photos
    ]


def read_photo(photo: Photo) -> np.ndarray:
    """The photo as the API decodes it; an enlarged one is resized (bicubic) and re-encoded as a
    JPEG (quality 90) first, as a camera's file would be."""
    data = photo.path.read_bytes()
    if photo.upscale > 1:
        small = decode_image(data, limits=decode_limits()).bgr
        large = cv2.resize(small, None, fx=photo.upscale, fy=photo.upscale, interpolation=cv2.INTER_CUBIC)
        data = cv2.imencode(".jpg", large, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    return decode_image(data, limits=decode_limits()).bgr


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


Detector = Callable[[np.ndarray], list[Scored]]


def detector_name(profile: str, engine: str) -> str:
    """A profile's row: its name alone with the default engine, e.g. `fast-float` with another."""
    return profile if engine == DEFAULT_ENGINE else f"{profile}-{engine}"


def profile_detector(profile: str, engine: str = DEFAULT_ENGINE) -> Detector:
    """The server's own detection, as the API runs it, on one thread."""

    def detect(bgr: np.ndarray) -> list[Scored]:
        faces = detect_faces(bgr, min_confidence=CURVE_FLOOR, profile=profile, threads=1, engine=engine)
        return [Scored((face.box.x, face.box.y, face.box.width, face.box.height), face.confidence) for face in faces]

    return detect


def opencv_reference_detector(long_side: int = 640) -> Detector:
    """The usual setup, OpenCV's FaceDetectorYN at long side 640: a yardstick measured in the same run,
    since shared machines vary in speed from one hour to the next."""
    with as_file(files(MODEL_PACKAGE) / MODEL_FILE) as path:
        yunet = cv2.FaceDetectorYN.create(str(path), "", (320, 320), CURVE_FLOOR, 0.3, 5000)

    def detect(bgr: np.ndarray) -> list[Scored]:
        height, width = bgr.shape[:2]
        scale = min(1.0, long_side / max(height, width))
        small = cv2.resize(bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        yunet.setInputSize((small.shape[1], small.shape[0]))
        rows = yunet.detect(small)[1]
        rows = np.zeros((0, 15)) if rows is None else rows
        return [Scored(tuple(float(value) / scale for value in row[:4]), float(row[14])) for row in rows]

    return detect


def run_benchmark(
    photos: list[Photo],
    *,
    detectors: dict[str, Detector],
    threshold: float,
    anonymise_threshold: float,
    progress: Callable[[Iterable[Photo]], Iterable[Photo]] = iter,
) -> list[dict]:
    """Accuracy per WIDER setting and single-thread detection time, for each detector; and what
    anonymising would catch at its own threshold, with its boxes grown by ANONYMISE_MARGIN.

    The detectors take turns on each photo, so a machine that speeds up or slows down during the
    run affects them all alike and their times stay comparable.
    """
    cv2.setNumThreads(1)
    detections: dict[str, dict[str, list[Scored]]] = {name: {} for name in detectors}
    milliseconds: dict[str, list[float]] = {name: [] for name in detectors}
    for photo in progress(photos):
        image = read_photo(photo)  # not timed: the same for every detector
        for name, detector in detectors.items():
            started = time.perf_counter()
            detections[name][photo.name] = detector(image)
            milliseconds[name].append((time.perf_counter() - started) * 1000)
    return [
        _report(name, photos, detections[name], milliseconds[name], threshold, anonymise_threshold)
        for name in detectors
    ]


def _report(
    name: str,
    photos: list[Photo],
    detections: dict[str, list[Scored]],
    milliseconds: list[float],
    threshold: float,
    anonymise_threshold: float,
) -> dict:
    settings, anonymising = {}, {}
    for setting in SETTINGS:
        images = [(detections[photo.name], photo.truth) for photo in photos]
        score = score_setting(images, setting, threshold)
        settings[setting] = {
            "average_precision": round(score.average_precision, 4),
            "precision": round(score.precision, 4),
            "recall": round(score.recall, 4),
            "faces": score.faces,
        }
        anonymised = score_setting(images, setting, anonymise_threshold, margin=ANONYMISE_MARGIN)
        anonymising[setting] = {"recall": round(anonymised.recall, 4), "hidden": round(anonymised.hidden, 4)}
    face_free = [photo for photo in photos if not photo.truth]

    def false_positives(at: float) -> int:
        return sum(1 for photo in face_free for detection in detections[photo.name] if detection.confidence >= at)

    return {
        "detector": name,
        "threshold": threshold,
        "images": len(photos),
        "settings": settings,
        "face_free_images": len(face_free),
        "false_positives_on_face_free": false_positives(threshold),
        "anonymising": {
            "threshold": anonymise_threshold,
            "margin": ANONYMISE_MARGIN,
            "settings": anonymising,
            "false_positives_on_face_free": false_positives(anonymise_threshold),
        },
        "ms_per_image": {
            "mean": round(statistics.mean(milliseconds), 1),
            "median": round(statistics.median(milliseconds), 1),
            "p90": round(percentile(milliseconds, 0.9), 1),
        },
    }


def format_table(results: list[dict]) -> str:
    header = (
        f"{'detector':<16} {'AP easy':>8} {'AP med':>8} {'AP hard':>8}   {'P/R easy':>11} {'P/R med':>11} "
        f"{'P/R hard':>11}   {'FP free':>7}   {'mean ms':>7} {'median':>7} {'p90':>7}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        settings, ms = result["settings"], result["ms_per_image"]
        lines.append(
            _row(
                result,
                [f"{settings[s]['average_precision']:>8.3f}" for s in SETTINGS],
                [f"{settings[s]['precision']:.2f}/{settings[s]['recall']:.2f}".rjust(11) for s in SETTINGS],
                result["false_positives_on_face_free"],
            )
            + f"   {ms['mean']:>7.1f} {ms['median']:>7.1f} {ms['p90']:>7.1f}"
        )
    anonymising = results[0]["anonymising"]
    lines += [
        "",
        f"Anonymising (annotate=blur/pixelate) at threshold {anonymising['threshold']}, boxes grown "
        f"{anonymising['margin']:.0%} a side: recall, and faces hidden (at least {HIDDEN_SHARE:.0%} covered)",
        f"{'detector':<16} {'R easy':>8} {'R med':>8} {'R hard':>8}   {'hid easy':>8} {'hid med':>8} "
        f"{'hid hard':>8}   {'FP free':>7}",
    ]
    for result in results:
        settings = result["anonymising"]["settings"]
        lines.append(
            _row(
                result,
                [f"{settings[s]['recall']:>8.3f}" for s in SETTINGS],
                [f"{settings[s]['hidden']:>8.3f}" for s in SETTINGS],
                result["anonymising"]["false_positives_on_face_free"],
            )
        )
    return "\n".join(lines)


def _row(result: dict, first: list[str], second: list[str], false_positives: int) -> str:
    """A detector's line: two groups of per-setting columns, then its false positives on face-free photos."""
    return (
        f"{result['detector']:<16} {' '.join(first)}   {' '.join(second)}"
        f"   {false_positives:>3}/{result['face_free_images']:<3}"
    )
