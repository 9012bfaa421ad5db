import json
import platform
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from detection.benchmark import (
    detector_name,
    enlarged,
    format_table,
    half_of,
    load_dataset,
    opencv_reference_detector,
    profile_detector,
    run_benchmark,
)
from vision.detector import PROFILES
from vision.engines import DEFAULT_ENGINE, ENGINES

DEFAULT_DATASET = settings.BASE_DIR.parent / "shared" / "faces" / "dev"


class Command(BaseCommand):
    help = "Measure the detector's accuracy (WIDER FACE average precision) and single-thread speed."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dataset",
            type=Path,
            default=DEFAULT_DATASET,
            help=f"folder with images/ and gt.json (default: {DEFAULT_DATASET})",
        )
        parser.add_argument(
            "--profile", action="append", choices=list(PROFILES), help="profile to measure (repeatable; default: all)"
        )
        parser.add_argument(
            "--engine",
            action="append",
            choices=list(ENGINES),
            help=f"engine to run each profile on (repeatable; default: {DEFAULT_ENGINE}); rows of another "
            "engine than the default are named PROFILE-ENGINE",
        )
        parser.add_argument("--output", type=Path, default=Path("bench-detector.json"), help="where to write JSON")
        parser.add_argument(
            "--half",
            choices=["odd", "even"],
            help="only the odd or even photos in name order, counted from 1 (odd: 1st, 3rd, ...)",
        )
        parser.add_argument("--limit", type=int, help="measure only the first N images (of the half, with --half)")
        parser.add_argument(
            "--upscale",
            type=int,
            default=1,
            help="enlarge every photo N times (bicubic, re-encoded as JPEG) with its truth boxes: big photos' passes",
        )
        parser.add_argument(
            "--no-reference",
            action="store_true",
            help="skip the yardstick row (OpenCV's FaceDetectorYN at 640 px) measured beside the profiles",
        )

    def handle(
        self,
        *args,
        dataset: Path,
        profile: list[str] | None,
        engine: list[str] | None,
        output: Path,
        limit: int | None,
        **options,
    ):
        if not (dataset / "gt.json").is_file():
            raise CommandError(f"No gt.json in {dataset}: pass --dataset FOLDER (images/ plus gt.json).")
        if options["upscale"] < 1:
            raise CommandError("--upscale takes a whole number of times, 1 or more.")
        photos = load_dataset(dataset)
        if options["half"]:
            photos = half_of(photos, options["half"])
        photos = enlarged(photos[:limit], options["upscale"])
        detectors = {
            detector_name(name, engine_name): profile_detector(name, engine_name)
            for name in profile or list(PROFILES)
            for engine_name in engine or [DEFAULT_ENGINE]
        }
        if not options["no_reference"]:
            detectors["opencv-yunet-640"] = opencv_reference_detector()
        results = run_benchmark(
            photos,
            detectors=detectors,
            threshold=settings.DETECTOR_MIN_CONFIDENCE,
            anonymise_threshold=settings.ANONYMISE_MIN_CONFIDENCE,
            progress=partial(tqdm, unit="photo", desc=", ".join(detectors)),
        )
        report = {
            "dataset": str(dataset.resolve()),
            "half": options["half"],
            "upscale": options["upscale"],
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version()},
            "results": results,
        }
        output.write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(
            f"{len(photos)} images from {dataset}"
            + (f" ({options['half']} half)" if options["half"] else "")
            + (f", enlarged {options['upscale']}x" if options["upscale"] > 1 else "")
            + f"; precision/recall at the default threshold "
            f"{settings.DETECTOR_MIN_CONFIDENCE}; ms: detection alone, one thread\n"
        )
        self.stdout.write(format_table(results))
        self.stdout.write(f"\nJSON: {output}")
