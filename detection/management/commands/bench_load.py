import json
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from facesite.layers import REDIS_BACKENDS

DEFAULT_PHOTOS = settings.BASE_DIR.parent / "shared" / "faces" / "dev" / "images"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BROADCAST_LONG_SIDE = 512  # pixels: the size issue 11's broadcast was measured at


class Command(BaseCommand):
    help = (
        "Start the server with ./entrypoint.sh and measure upload throughput and latency (beside the same "
        "image work without a server), websocket fan-out to many /faces clients, and its memory."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--photos",
            type=Path,
            default=DEFAULT_PHOTOS,
            help=f"folder of photos to upload (default: {DEFAULT_PHOTOS})",
        )
        parser.add_argument(
            "--clients", type=int, nargs="*", default=[1, 4, 16], help="concurrent uploaders, one level each"
        )
        parser.add_argument("--uploads", type=int, default=60, help="uploads per level of --clients")
        parser.add_argument(
            "--websockets",
            type=int,
            nargs="*",
            default=[100, 1000, 5000],
            help="/faces clients, one fan-out level each (kept connected from one level to the next)",
        )
        parser.add_argument(
            "--fanout-uploads",
            type=int,
            default=10,
            help="uploads per fan-out level, one at a time, of the folder's smallest photo",
        )
        parser.add_argument(
            "--broadcast",
            type=int,
            nargs="*",
            default=[1000, 5000],
            help="/faces clients, one broadcast level each, on this server and then on the bare broadcaster "
            "(the same connections as the fan-out levels)",
        )
        parser.add_argument(
            "--broadcast-uploads", type=int, default=20, help="paced uploads per broadcast level, after an untimed one"
        )
        parser.add_argument(
            "--broadcast-interval", type=float, default=0.5, help="seconds between the broadcast levels' POSTs"
        )
        parser.add_argument(
            "--broadcast-photo",
            metavar="NAME",
            help="photo of the folder that the broadcast levels upload, at 512 px (default: the folder's first)",
        )
        parser.add_argument("--workers", type=int, default=1, help="Daphne processes (WORKERS); above 1 needs --redis")
        parser.add_argument(
            "--redis",
            dest="redis_url",
            nargs="?",
            const=DEFAULT_REDIS_URL,
            default="",
            metavar="URL",
            help=f"use the Redis channel layer (default URL: {DEFAULT_REDIS_URL}, under a unique key prefix)",
        )
        parser.add_argument(
            "--layer", choices=list(REDIS_BACKENDS), default="core", help="Redis channel layer (with --redis)"
        )
        parser.add_argument("--output", type=Path, default=Path("bench-load.json"), help="where to write JSON")

    def handle(self, *args, photos: Path, redis_url: str, workers: int, **options) -> None:
        try:
            # Its HTTP and websocket clients (requests, websockets) are development dependencies.
            from detection.loadbench import LoadConfig, downscaled, format_report, load_photos, run_load_benchmark
        except ModuleNotFoundError as error:
            raise CommandError(
                f"bench_load needs the development dependencies, and {error.name.partition('.')[0]} is missing: "
                "pip install -r requirements-dev.txt (make bench-load installs them)."
            ) from None
        if workers > 1 and not redis_url:
            raise CommandError("--workers above 1 needs --redis: the processes share websocket messages through it.")
        if options["layer"] != "core" and not redis_url:
            raise CommandError("--layer applies to the Redis channel layer: add --redis.")
        if redis_url:
            check_redis(redis_url)
        found = load_photos(photos) if photos.is_dir() else []
        if not found:
            raise CommandError(f"No photos in {photos}: pass --photos FOLDER.")
        named = [photo for photo in found if photo.name == (options["broadcast_photo"] or found[0].name)]
        if not named:
            raise CommandError(f"No photo {options['broadcast_photo']} in {photos}.")
        config = LoadConfig(
            photos=found,
            fanout_photo=min(found, key=lambda photo: len(photo.data)),
            clients=options["clients"],
            uploads=options["uploads"],
            websockets=options["websockets"],
            fanout_uploads=options["fanout_uploads"],
            broadcast_photo=downscaled(named[0], BROADCAST_LONG_SIDE),
            broadcast_listeners=options["broadcast"],
            broadcast_uploads=options["broadcast_uploads"],
            broadcast_interval=options["broadcast_interval"],
            workers=workers,
            redis_url=redis_url,
            layer=options["layer"],
        )
        report = run_load_benchmark(config, log=self.stderr.write)
        options["output"].write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(format_report(report))
        self.stdout.write(f"\nJSON: {options['output']}")


def check_redis(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        raise CommandError(f"Redis at {url} does not answer: {error}") from None
