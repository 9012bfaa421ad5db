"""manage.py prune_detections and check_media."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from detection.models import Detection
from detection.services import REPAIR_GRACE
from facesite.task_backends import task_backends
from tests.conftest import TEST_REDIS_URL, stored_files

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def upload(content: bytes, *, days_ago: int = 0) -> Detection:
    body = APIClient().post("/image", {"image": SimpleUploadedFile("p", content)}, format="multipart").json()
    Detection.objects.filter(id=body["id"]).update(created_at=timezone.now() - timedelta(days=days_ago))
    return Detection.objects.get(id=body["id"])


def test_prune_deletes_old_detections_with_their_files(coffee_png, media_root, capsys):
    old, recent = upload(coffee_png, days_ago=40), upload(coffee_png, days_ago=3)

    call_command("prune_detections", "--older-than", "30d")

    assert list(Detection.objects.values_list("id", flat=True)) == [recent.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(recent.id)}
    assert "Deleted 1 detection(s)" in capsys.readouterr().out
    assert not old.original.storage.exists(old.original.name)


def test_prune_counts_every_detection_of_an_archive_larger_than_one_batch(capsys):
    # It deletes in batches (one transaction each): the count it reports is the whole archive's.
    long_ago = timezone.now() - timedelta(days=40)
    Detection.objects.bulk_create(
        Detection(created_at=long_ago, original=f"detections/gone/{number}.png") for number in range(1201)
    )

    call_command("prune_detections", "--older-than", "30d")

    assert not Detection.objects.exists()
    assert "Deleted 1201 detection(s)" in capsys.readouterr().out


def test_prune_uses_the_retention_setting(coffee_png, settings):
    settings.RETENTION_DAYS = 7
    upload(coffee_png, days_ago=8)
    kept = upload(coffee_png, days_ago=6)

    call_command("prune_detections")

    assert list(Detection.objects.values_list("id", flat=True)) == [kept.id]


@pytest.mark.parametrize("arguments", [[], ["--older-than", "0d"], ["--older-than", "0h"], ["--older-than", "0m"]])
def test_an_age_of_zero_keeps_everything_as_retention_days_zero_does(coffee_png, settings, capsys, arguments):
    settings.RETENTION_DAYS = 0
    kept = [upload(coffee_png, days_ago=400).id, upload(coffee_png).id]

    call_command("prune_detections", *arguments)

    assert sorted(Detection.objects.values_list("id", flat=True)) == sorted(kept)
    assert "keeps everything" in capsys.readouterr().out


def test_prune_refuses_an_age_it_cannot_read():
    for age in ("a month", "-3d", "30"):
        with pytest.raises(CommandError, match="30d"):
            call_command("prune_detections", f"--older-than={age}")


@pytest.mark.parametrize("arguments", [["--older-than", "30d"], []], ids=["--older-than", "RETENTION_DAYS"])
def test_a_dry_run_counts_and_deletes_nothing(coffee_png, media_root, settings, capsys, arguments):
    settings.RETENTION_DAYS = 30
    upload(coffee_png, days_ago=40), upload(coffee_png, days_ago=50), upload(coffee_png, days_ago=3)
    files_before = stored_files(media_root)

    call_command("prune_detections", "--dry-run", *arguments)

    assert "Would delete 2 detection(s)" in capsys.readouterr().out
    assert Detection.objects.count() == 3
    assert stored_files(media_root) == files_before


def empty_folders(media_root: Path) -> list[Path]:
    return [path for path in media_root.rglob("*") if path.is_dir() and not any(path.iterdir())]


def test_pruning_and_deleting_leave_no_empty_folders(coffee_png, media_root):
    upload(coffee_png, days_ago=40), upload(coffee_png, days_ago=40), upload(coffee_png, days_ago=400)
    kept, deleted = upload(coffee_png), upload(coffee_png)

    call_command("prune_detections", "--older-than", "30d")
    Detection.objects.filter(id=deleted.id).delete()  # as the admin deletes one

    assert {path.parent.name for path in stored_files(media_root)} == {str(kept.id)}
    assert empty_folders(media_root) == []
    Detection.objects.all().delete()
    # No detection's folder is left; today's date folder stays, since an upload creating its own
    # folder in it just as it was removed would fail (old dates' go: see the check_media test).
    today_folder = f"{timezone.now():%Y/%m/%d}"
    assert [path.relative_to(media_root / "detections").as_posix() for path in empty_folders(media_root)] == [
        today_folder
    ]


def settled(media_root: Path) -> None:
    """Files written long enough ago that no upload in flight can own them."""
    long_ago = time.time() - 2 * REPAIR_GRACE.total_seconds()
    for path in stored_files(media_root):
        os.utime(path, (long_ago, long_ago))


def stray_file(media_root: Path, name: str = "stray") -> Path:
    stray = media_root / "detections" / "2026" / "01" / "01" / name / "original.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a crash between writing the files and the row")
    return stray


def test_check_media_finds_and_repairs_both_kinds_of_orphan(coffee_png, media_root, capsys):
    intact = upload(coffee_png)
    lost = upload(coffee_png)
    (media_root / lost.annotated.name).unlink()  # e.g. a disk restored from an older backup
    stray_file(media_root)
    settled(media_root)

    call_command("check_media")
    report = capsys.readouterr().out
    call_command("check_media", "--repair", "--delete-orphan-files")

    assert "orphan file: detections/2026/01/01/stray/original.jpg" in report
    assert f"detection without its files: {lost.id}" in report
    assert list(Detection.objects.values_list("id", flat=True)) == [intact.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(intact.id)}
    assert not (media_root / "detections" / "2026" / "01").exists()  # no empty folders left
    call_command("check_media")
    assert "0 orphan file(s) found, 0 detection(s) without files found" in capsys.readouterr().out


def test_repair_keeps_orphan_files_unless_told_the_media_folder_is_this_databases_alone(coffee_png, media_root, capsys):
    lost = upload(coffee_png)
    (media_root / lost.annotated.name).unlink()
    stray = stray_file(media_root)
    settled(media_root)

    call_command("check_media", "--repair")

    assert stray.exists()
    assert Detection.objects.count() == 0  # its own rows it can judge
    assert "--delete-orphan-files" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--repair"):
        call_command("check_media", "--delete-orphan-files")


def test_repair_leaves_what_an_upload_in_flight_may_still_own(coffee_png, media_root, capsys):
    # Files are written before their row, and an embedded upload is pending until detected.
    in_flight = left_unfinished(upload(coffee_png))
    stray = stray_file(media_root)

    call_command("check_media", "--repair", "--delete-orphan-files")

    assert stray.exists()
    assert Detection.objects.get(id=in_flight.id).status == Detection.Status.PENDING
    assert "0 orphan file(s) removed" in capsys.readouterr().out
    # With the server stopped nothing is in flight, and --min-age 0m says so.
    call_command("check_media", "--repair", "--delete-orphan-files", "--min-age", "0m")
    assert not stray.exists()
    assert not Detection.objects.filter(id=in_flight.id).exists()


def manage(database_url: str, media_root: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "MEDIA_ROOT": str(media_root), "SECRET_KEY": "test-secret"}
    env.pop("TASKS_BACKEND", None)
    return subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_repair_with_another_database_on_the_same_media_folder_deletes_none_of_its_files(
    coffee_png, media_root, tmp_path
):
    ours = upload(coffee_png)
    other_database = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    photo = tmp_path / "coffee.png"
    photo.write_bytes(coffee_png)
    create = (
        "from detection.services import detection_create; "
        f"detection_create(image_bytes=open({str(photo)!r}, 'rb').read())"
    )
    for arguments in (["migrate", "--noinput"], ["shell", "-c", create]):
        result = manage(other_database, media_root, *arguments)
        assert result.returncode == 0, result.stderr
    theirs = [path for path in stored_files(media_root) if path.parent.name != str(ours.id)]
    settled(media_root)

    call_command("check_media", "--repair")  # ours
    result = manage(other_database, media_root, "check_media", "--repair")  # theirs

    assert result.returncode == 0, result.stderr
    assert len(theirs) == 2 and all(path.exists() for path in theirs)
    assert all(media_root.joinpath(name).exists() for name in (ours.original.name, ours.annotated.name))
    assert Detection.objects.get(id=ours.id).status == Detection.Status.DONE


def left_unfinished(detection: Detection) -> Detection:
    """What a crash in the middle of an embedded upload leaves: the original and a pending row."""
    detection.annotated.storage.delete(detection.annotated.name)
    Detection.objects.filter(id=detection.id).update(status=Detection.Status.PENDING, annotated="")
    return Detection.objects.get(id=detection.id)


def test_check_media_removes_detections_a_crash_left_unfinished(coffee_png, media_root, capsys):
    intact, unfinished = upload(coffee_png), left_unfinished(upload(coffee_png, days_ago=1))

    call_command("check_media")
    report = capsys.readouterr().out
    call_command("check_media", "--repair")

    assert f"detection left unfinished: {unfinished.id}" in report
    assert "0 orphan file(s) found, 0 detection(s) without files found" in report
    assert list(Detection.objects.values_list("id", flat=True)) == [intact.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(intact.id)}


def test_check_media_leaves_queued_detections_to_the_workers(coffee_png, settings, capsys):
    queued = left_unfinished(upload(coffee_png, days_ago=1))
    settings.TASKS = task_backends("rq", redis_url=TEST_REDIS_URL)  # queue mode: pending means queued

    call_command("check_media", "--repair")

    assert "unfinished" not in capsys.readouterr().out
    assert Detection.objects.get(id=queued.id).status == Detection.Status.PENDING
