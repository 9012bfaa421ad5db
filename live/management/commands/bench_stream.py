import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from live.streambench import StreamBenchConfig, format_report, run_stream_benchmark
from vision.profiles import PROFILES

DEFAULT_PHOTOS = settings.BASE_DIR.parent / "shared" / "faces" / "dev" / "images"


class Command(BaseCommand):
    help = (
        "Start the server with ./entrypoint.sh and replay a clip made from photos over /stream with 1, 2 and 4 "
        "streams at once (640x480 and 1280x720); uploads beside four streams; a soak of two streams."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos the clip pans across")
        parser.add_argument("--streams", type=int, nargs="*", default=[1, 2, 4], help="streams at once, a level each")
        parser.add_argument("--seconds", type=float, default=10, help="seconds per level")
        parser.add_argument("--profile", choices=list(PROFILES), default="fast")
        parser.add_argument("--uploads", type=int, default=20, help="paced uploads, idle and beside four streams")
        parser.add_argument("--upload-interval", type=float, default=0.5, help="seconds between those uploads")
        parser.add_argument("--soak", type=float, default=600, help="seconds of the two-stream soak (0: none)")
        parser.add_argument("--output", type=Path, help="write the report as JSON here")

    def handle(self, *args, **options) -> None:
        folder = options["photos"]
        photos = sorted(path for path in folder.glob("*.jpg")) if folder.is_dir() else []
        if not photos:
            raise CommandError(f"No JPEG photos in {folder}.")
        config = StreamBenchConfig(
            photos=photos,
            streams=options["streams"],
            seconds=options["seconds"],
            profile=options["profile"],
            uploads=options["uploads"],
            upload_interval=options["upload_interval"],
            soak_seconds=options["soak"],
        )
        report = run_stream_benchmark(config, log=lambda line: self.stderr.write(line))
        self.stdout.write(format_report(report))
        if options["output"]:
            options["output"].write_text(json.dumps(report, indent=2))
