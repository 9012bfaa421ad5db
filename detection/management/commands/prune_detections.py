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
    help = "Delete detections older than an age (default: RETENTION_DAYS), with their files."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", help="e.g. 30d, 12h, 90m (default: RETENTION_DAYS days)")

    def handle(self, *args, older_than: str | None, **options) -> None:
        if older_than:
            age = parse_age(older_than)
        elif settings.RETENTION_DAYS:
            age = timedelta(days=settings.RETENTION_DAYS)
        else:
            raise CommandError("RETENTION_DAYS is 0 (keep everything): pass --older-than, e.g. --older-than 30d.")
        deleted = detection_prune(older_than=age)
        self.stdout.write(f"Deleted {deleted} detection(s) created before {age} ago, with their files.")
