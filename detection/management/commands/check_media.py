from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from detection.management.commands.prune_detections import parse_age
from detection.services import REPAIR_GRACE, media_check, media_repair


class Command(BaseCommand):
    help = (
        "Report stored files without a detection or video, detections and videos without their files, "
        "detections a crash left unfinished (embedded mode) and running videos that stopped moving, "
        "leaving out what may be an upload in flight (--min-age). "
        "--repair removes the detections; files without one only with --delete-orphan-files."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--repair", action="store_true", help="delete the detections without files and the unfinished ones"
        )
        parser.add_argument(
            "--delete-orphan-files",
            action="store_true",
            help="with --repair, also delete the files without a detection: only when no other database "
            "(another DATABASE_URL) stores its images in this media folder, whose files would look the same",
        )
        parser.add_argument(
            "--min-age",
            type=parse_age,
            default=REPAIR_GRACE,
            help="leave out files and pending detections younger than this, e.g. 1h (the default) or 0m "
            "when the server is stopped: an upload in flight has its files before its row",
        )

    def handle(self, *args, repair: bool, delete_orphan_files: bool, min_age: timedelta, **options) -> None:
        if delete_orphan_files and not repair:
            raise CommandError("--delete-orphan-files goes with --repair.")
        report = media_check(min_age=min_age)
        for name in report.orphan_files:
            self.stdout.write(f"orphan file: {name}")
        for detection_id in report.missing_files:
            self.stdout.write(f"detection without its files: {detection_id}")
        for detection_id in report.unfinished:
            self.stdout.write(f"detection left unfinished: {detection_id}")
        for video_id in report.missing_video_files:
            self.stdout.write(f"video without its files: {video_id}")
        for video_id in report.unfinished_videos:
            self.stdout.write(f"video left unfinished: {video_id}")
        if repair:
            media_repair(report, delete_orphan_files=delete_orphan_files)
        files_verb = "removed" if delete_orphan_files else "found"
        rows_verb = "removed" if repair else "found"
        self.stdout.write(
            f"{len(report.orphan_files)} orphan file(s) {files_verb}, {len(report.missing_files)} detection(s) "
            f"without files {rows_verb}."
        )
        if report.unfinished:
            self.stdout.write(f"{len(report.unfinished)} unfinished detection(s) {rows_verb}.")
        if report.missing_video_files or report.unfinished_videos:
            self.stdout.write(
                f"{len(report.missing_video_files)} video(s) without files and {len(report.unfinished_videos)} "
                f"unfinished video(s) {rows_verb}."
            )
        if repair and report.orphan_files and not delete_orphan_files:
            self.stdout.write(
                "Orphan files kept: another database may store its images in this media folder. If none "
                "does, --repair --delete-orphan-files removes them."
            )
