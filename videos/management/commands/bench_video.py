import json
import tempfile
import time
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from detection.benchmark import load_dataset
from videos.benchmark import (
    Setup,
    accuracy_table,
    default_setup,
    in_fresh_process,
    machine,
    measure_accuracy,
    measure_long_video,
    measure_speed,
    render_clips,
    speed_table,
    spread,
    targets,
    targets_table,
)
from vision.profiles import PROFILES

DEFAULT_DATASET = settings.BASE_DIR.parent / "shared" / "faces" / "dev"


def _list(kind: type, text: str) -> list:
    return [kind(item) for item in text.split(",") if item]


class Command(BaseCommand):
    help = (
        "Clips with known faces in every frame, made from the dev photos (pan, zoom, degraded frames), run "
        "through the upload's video pipeline: coverage, leaks and over-blur per WIDER setting; speed at 720p "
        "and 1080p on one core and the whole machine; peak RSS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="folder with images/ and gt.json")
        parser.add_argument(
            "--limit", type=int, help="only N photos, spread evenly over the set in name order (every event's turn)"
        )
        parser.add_argument("--profiles", help="comma-separated profiles (default: VIDEO_PROFILE)")
        parser.add_argument("--min-confidence", help="comma-separated thresholds (default: VIDEO_MIN_CONFIDENCE)")
        parser.add_argument(
            "--detect-every", help="comma-separated N: detect every Nth frame (default: VIDEO_DETECT_EVERY)"
        )
        parser.add_argument(
            "--sizes",
            default="1280x720,1920x1080",
            help="clip sizes; accuracy is scored on the first, speed measured on each",
        )
        parser.add_argument("--speed-clips", type=int, default=4, help="clips per speed run (0: no speed runs)")
        parser.add_argument("--speed-repeats", type=int, default=3, help="runs per speed setting; the median is kept")
        parser.add_argument(
            "--speed-setups",
            choices=["default", "all"],
            default="default",
            help="speed for the default setup only, or for every profile and detect-every (at the first threshold)",
        )
        parser.add_argument(
            "--long", type=float, default=0, help="also process a 1080p clip this many seconds long: RSS over time"
        )
        parser.add_argument("--json", type=Path, help="write the report as JSON here")

    def partial_report(self, path: Path | None, accuracy: list[dict]) -> None:
        """The setups done so far, for a long sweep stopped midway."""
        self.stderr.write("\n" + accuracy_table(accuracy[-1:]).splitlines()[-1])
        if path:
            path.write_text(json.dumps({"partial": True, "accuracy": accuracy}, indent=2) + "\n")

    def handle(self, *args, dataset: Path, limit: int | None, **options) -> None:
        if not (dataset / "gt.json").is_file():
            raise CommandError(f"No gt.json in {dataset}: pass --dataset FOLDER (images/ plus gt.json).")
        default = default_setup()
        profiles = _list(str, options["profiles"]) if options["profiles"] else [default.profile]
        if unknown := set(profiles) - set(PROFILES):
            raise CommandError(f"Unknown profile(s) {', '.join(sorted(unknown))}: {', '.join(PROFILES)}.")
        thresholds = _list(float, options["min_confidence"]) if options["min_confidence"] else [default.min_confidence]
        everies = _list(int, options["detect_every"]) if options["detect_every"] else [default.detect_every]
        sizes = _list(str, options["sizes"])
        setups = [
            Setup(profile, threshold, every) for profile in profiles for threshold in thresholds for every in everies
        ]
        photos = spread(load_dataset(dataset), limit)
        self.stderr.write(f"{len(photos)} photos, {len(setups)} setup(s), sizes {', '.join(sizes)}")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="bench-video-") as temporary:
            folder = Path(temporary)
            clips = {
                size: render_clips(
                    photos if index == 0 else photos[: options["speed_clips"]],
                    folder,
                    size=size,
                    progress=partial(tqdm, unit="clip", desc=f"rendering {size}"),
                )
                for index, size in enumerate(sizes)
                if index == 0 or options["speed_clips"]
            }
            accuracy = measure_accuracy(
                clips[sizes[0]],
                setups,
                folder=folder,
                progress=partial(tqdm, unit="clip", desc="processing", leave=False),
                after_each=partial(self.partial_report, options["json"]),
            )
            speed_setups = (
                [Setup(profile, thresholds[0], every) for profile in profiles for every in everies]
                if options["speed_setups"] == "all"
                else [default]
            )
            speed = []
            if options["speed_clips"]:
                for size in tqdm(sizes, unit="size", desc="speed"):
                    for setup in speed_setups:
                        for one_core in (True, False):
                            speed.append(
                                in_fresh_process(
                                    measure_speed,
                                    clips[size][: options["speed_clips"]],
                                    setup,
                                    size=size,
                                    one_core=one_core,
                                    repeats=options["speed_repeats"],
                                )
                            )
            long_video = (
                measure_long_video(photos[0], folder, seconds=options["long"], setup=default)
                if options["long"]
                else None
            )
        rows = targets(accuracy, speed, default)
        about = machine()
        self.stdout.write(
            f"CPU: {about['cpu_model']}, {about['cores']} cores; {len(photos)} photos from {dataset}, a "
            f"{clips[sizes[0]][0].truth.frames}-frame clip each at {sizes[0]} (defaults: {default.name}); "
            f"{time.monotonic() - started:.0f} s.\n"
            "Coverage: (face, frame) pairs at least 80% anonymised; leaking frames: frames with an easy or medium "
            "face not covered, of the frames with one; longest: frames in a row one such face stayed uncovered; "
            "over-blur: the frames' area anonymised outside every true face; photo: the detector on the photos "
            "themselves at the same profile and threshold.\n"
        )
        self.stdout.write(accuracy_table(accuracy) + "\n")
        if speed:
            self.stdout.write(
                f"\nSpeed over {options['speed_clips']} clips, median of {options['speed_repeats']} runs (a shared "
                "machine: timings are noisy); one core: every thread pinned to one CPU.\n"
            )
            self.stdout.write(speed_table(speed) + "\n")
        if long_video:
            self.stdout.write(
                f"\nA {long_video['seconds']:g} s 1080p clip: {long_video['fps']} fps, "
                f"RSS {long_video['rss_before_mb']} MB before, peak {long_video['peak_rss_mb']} MB "
                f"(first quarter {long_video['rss_first_quarter_mb']}, "
                f"last quarter {long_video['rss_last_quarter_mb']}).\n"
            )
        if rows:
            self.stdout.write("\nTargets (defaults):\n" + targets_table(rows) + "\n")
        if options["json"]:
            report = {
                "date": time.strftime("%Y-%m-%d"),
                "machine": about,
                "dataset": str(dataset.resolve()),
                "photos": len(photos),
                "defaults": default.__dict__,
                "accuracy_size": sizes[0],
                "accuracy": accuracy,
                "speed": speed,
                "long_video": long_video,
                "targets": rows,
            }
            options["json"].write_text(json.dumps(report, indent=2) + "\n")
