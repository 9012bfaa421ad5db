import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from detection.benchmark import format_table, load_dataset, run_benchmark
from detection.detector import PROFILES

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
        parser.add_argument("--output", type=Path, default=Path("bench-detector.json"), help="where to write JSON")
        parser.add_argument("--limit", type=int, help="measure only the first N images")

    def handle(self, *args, dataset: Path, profile: list[str] | None, output: Path, limit: int | None, **options):
        if not (dataset / "gt.json").is_file():
            raise CommandError(f"No gt.json in {dataset}: pass --dataset FOLDER (images/ plus gt.json).")
        photos = load_dataset(dataset)[:limit]
        results = []
        for name in profile or list(PROFILES):
            bar = tqdm(desc=f"{name:>9}", total=len(photos), unit="img", leave=False)

            def progress(items, bar=bar):
                for item in items:
                    yield item
                    bar.update()

            results.append(
                run_benchmark(photos, profile=name, threshold=settings.DETECTOR_MIN_CONFIDENCE, progress=progress)
            )
            bar.close()
        report = {
            "dataset": str(dataset.resolve()),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version()},
            "results": results,
        }
        output.write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(
            f"{len(photos)} images from {dataset}; precision/recall at the default threshold "
            f"{settings.DETECTOR_MIN_CONFIDENCE}; ms: detection alone, one thread\n"
        )
        self.stdout.write(format_table(results))
        self.stdout.write(f"\nJSON: {output}")
