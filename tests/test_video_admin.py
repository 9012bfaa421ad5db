"""Videos in the admin (list with posters, the player, deleting with the files) and in check_media
(orphan files under videos/, videos without their files, running videos that stopped moving)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import stored_files
from tests.video_clips import drain_videos, faces_clip
from videos.models import Video

# Files are deleted when the delete commits, and the background thread sees committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = "/admin/videos/video/"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return faces_clip(tmp_path_factory.mktemp("video_admin") / "clip.mp4", seconds=0.5)


def processed(clip: Path, count: int = 1) -> list[Video]:
    ids = []
    for _ in range(count):
        response = APIClient().post("/video", {"video": SimpleUploadedFile("c.mp4", clip.read_bytes())})
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
        # One at a time: the tests' in-memory SQLite fails a write ("table is locked") while the
        # background thread holds the table, where a server's file database waits.
        drain_videos()
    videos = [Video.objects.get(id=video_id) for video_id in ids]
    assert all(video.status == Video.Status.DONE for video in videos)
    return videos


def test_the_list_shows_posters_and_the_detail_page_plays_the_video(admin_client, clip):
    [video] = processed(clip)
    Video.objects.create(
        status=Video.Status.FAILED, original="videos/x/original.mp4", annotate_style="box", detector_profile="fast",
        min_confidence=0.4, detect_every=3, size=1, width=320, height=240, fps=10, duration=75.5,
        error_code="corrupt_video", error_message="The video cannot be decoded.",
    )  # fmt: skip

    listing = admin_client.get(LIST_URL).content.decode()
    page = admin_client.get(f"{LIST_URL}{video.id}/change/").content.decode()

    assert f'<img src="{video.poster.url}"' in listing
    assert "1:15.5" in listing  # the failed one's duration, and its status instead of a poster
    assert "Failed" in listing
    assert f'<video src="{video.video.url}"' in page
    assert "corrupt_video" not in page
    assert admin_client.get(f"{LIST_URL}add/").status_code == 403


def test_deleting_videos_in_the_admin_deletes_their_files(admin_client, clip, media_root):
    first, second, kept = processed(clip, count=3)

    admin_client.post(f"{LIST_URL}{first.id}/delete/", {"post": "yes"})
    admin_client.post(LIST_URL, {"action": "delete_selected", "_selected_action": [second.id], "post": "yes"})

    assert list(Video.objects.values_list("id", flat=True)) == [kept.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(kept.id)}
    assert len(stored_files(media_root)) == 4  # original, video, faces, poster


def test_check_media_finds_and_repairs_what_videos_left_behind(clip, media_root, capsys):
    intact, lost, stalled = processed(clip, count=3)
    (media_root / lost.poster.name).unlink()  # e.g. a disk restored from an older backup
    stray = media_root / "videos" / "2026" / "01" / "01" / "stray" / "video.mp4"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a crash")
    # A running video whose progress stopped long ago: its job died and nothing will finish it.
    Video.objects.filter(id=stalled.id).update(
        status=Video.Status.RUNNING, updated_at=timezone.now() - timedelta(hours=2)
    )

    call_command("check_media", "--min-age", "0m")
    report = capsys.readouterr().out
    call_command("check_media", "--repair", "--delete-orphan-files", "--min-age", "0m")

    assert "orphan file: videos/2026/01/01/stray/video.mp4" in report
    assert f"video without its files: {lost.id}" in report
    assert f"video left unfinished: {stalled.id}" in report
    assert list(Video.objects.values_list("id", flat=True)) == [intact.id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(intact.id)}
    assert not (media_root / "videos" / "2026" / "01").exists()
    call_command("check_media", "--min-age", "0m")
    assert "0 orphan file(s) found" in capsys.readouterr().out
