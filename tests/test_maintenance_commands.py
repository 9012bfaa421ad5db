"""manage.py prune_detections and check_media."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from detection.models import Detection
from facesite.task_backends import task_backends
from tests.conftest import TEST_REDIS_URL, stored_files

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_prune_refuses_to_guess(settings):
    settings.RETENTION_DAYS = 0

    with pytest.raises(CommandError, match="--older-than"):
        call_command("prune_detections")
    with pytest.raises(CommandError, match="30d"):
        call_command("prune_detections", "--older-than", "a month")


def test_check_media_finds_and_repairs_both_kinds_of_orphan(coffee_png, media_root, capsys):
    intact = upload(coffee_png)
    lost = upload(coffee_png)
    (media_root / lost.annotated.name).unlink()  # e.g. a disk restored from an older backup
    stray = media_root / "detections" / "2026" / "01" / "01" / "stray" / "original.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a crash between writing the files and the row")

    call_command("check_media")
    report = capsys.readouterr().out
    call_command("check_media", "--repair")

    assert "orphan file: detections/2026/01/01/stray/original.jpg" in report
    assert f"detection without its files: {lost.id}" in report
    assert list(Detection.objects.values_list("id", flat=True)) == [intact.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(intact.id)}
    call_command("check_media")
    assert "0 orphan file(s) and 0 detection(s) without files found" in capsys.readouterr().out


def left_unfinished(detection: Detection) -> Detection:
    """What a crash in the middle of an embedded upload leaves: the original and a pending row."""
    detection.annotated.storage.delete(detection.annotated.name)
    Detection.objects.filter(id=detection.id).update(status=Detection.Status.PENDING, annotated="")
    return Detection.objects.get(id=detection.id)


def test_check_media_removes_detections_a_crash_left_unfinished(coffee_png, media_root, capsys):
    intact, unfinished = upload(coffee_png), left_unfinished(upload(coffee_png))

    call_command("check_media")
    report = capsys.readouterr().out
    call_command("check_media", "--repair")

    assert f"detection left unfinished: {unfinished.id}" in report
    assert "0 orphan file(s) and 0 detection(s) without files found" in report
    assert list(Detection.objects.values_list("id", flat=True)) == [intact.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(intact.id)}


def test_check_media_leaves_queued_detections_to_the_workers(coffee_png, settings, capsys):
    queued = left_unfinished(upload(coffee_png))
    settings.TASKS = task_backends("rq", redis_url=TEST_REDIS_URL)  # queue mode: pending means queued

    call_command("check_media", "--repair")

    assert "unfinished" not in capsys.readouterr().out
    assert Detection.objects.get(id=queued.id).status == Detection.Status.PENDING
