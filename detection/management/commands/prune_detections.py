import re
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detection.services import detection_prune

UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise CommandError(f"Cannot read the age {text!r}: write e.g. 30d, 12h or 90m.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Delete detections older than an age (default: RETENTION_DAYS), with their files. "
        "An age of 0, like RETENTION_DAYS=0, keeps everything."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", help="e.g. 30d, 12h, 90m (default: RETENTION_DAYS days)")
        parser.add_argument("--dry-run", action="store_true", help="only say how many would be deleted")

    def handle(self, *args, older_than: str | None, dry_run: bool, **options) -> None:
        age = parse_age(older_than) if older_than else timedelta(days=settings.RETENTION_DAYS)
        if not age:
            self.stdout.write("An age of 0 keeps everything (as RETENTION_DAYS=0 does): nothing deleted.")
            return
        count = detection_prune(older_than=age, dry_run=dry_run)
        if dry_run:
            self.stdout.write(f"Would delete {count} detection(s) created before {age} ago; nothing deleted.")
        else:
            self.stdout.write(f"Deleted {count} detection(s) created before {age} ago, with their files.")
