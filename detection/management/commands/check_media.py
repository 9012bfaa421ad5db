from django.core.management.base import BaseCommand

from detection.services import media_check, media_repair


class Command(BaseCommand):
    help = (
        "Report stored files without a detection, detections without their files and (embedded mode) "
        "detections a crash left unfinished; --repair removes them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repair", action="store_true", help="delete the orphans found")

    def handle(self, *args, repair: bool, **options) -> None:
        report = media_check()
        for name in report.orphan_files:
            self.stdout.write(f"orphan file: {name}")
        for detection_id in report.missing_files:
            self.stdout.write(f"detection without its files: {detection_id}")
        for detection_id in report.unfinished:
            self.stdout.write(f"detection left unfinished: {detection_id}")
        if repair:
            media_repair(report)
        verb = "removed" if repair else "found"
        self.stdout.write(
            f"{len(report.orphan_files)} orphan file(s) and {len(report.missing_files)} detection(s) "
            f"without files {verb}."
        )
        if report.unfinished:
            self.stdout.write(f"{len(report.unfinished)} unfinished detection(s) {verb}.")
