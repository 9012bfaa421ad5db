import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from live.watcher import CameraWatcher


def shard(value: str) -> tuple[int, int]:
    """ "2/3" -> (2, 3)."""
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise CommandError(f"--shard takes N/COUNT, e.g. 1/3, not {value!r}") from None
    if not 1 <= index <= count:
        raise CommandError(f"--shard {value}: N must be 1 to COUNT")
    return index, count


class Command(BaseCommand):
    help = (
        "Watch the enabled cameras (the admin's Cameras) until stopped: sample their frames, store a detection "
        "when faces appear, keep each camera's state. SIGTERM or SIGINT stops it cleanly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shard",
            default="1/1",
            help="N/COUNT: watch only the cameras whose id divided by COUNT leaves N-1, so COUNT watchers "
            "(here or on other machines, with the same DATABASE_URL and REDIS_URL) share the cameras.",
        )

    def handle(self, *args: object, **options: str) -> None:
        index, count = shard(options["shard"])
        if settings.CAMERAS_IN_SERVER:
            raise CommandError(
                "The server watches the cameras itself (CAMERAS_IN_SERVER, the default without REDIS_URL). Run "
                "watchers of their own with REDIS_URL set, here and for the servers, so /faces hears them."
            )
        stopping = threading.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda number, frame: stopping.set())
        CameraWatcher(shard=index, shards=count).run(stopping)
