"""POST /video: what is accepted (202, Location), and what is refused before any work (415, 413, 400),
with the same keys and rate limits as /image. Real clips made with PyAV from a dev photo."""

import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from access.services import api_key_create
from tests.conftest import stored_files
from tests.video_clips import clip_in, faces_clip
from videos.models import Video

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video_upload")


@pytest.fixture(scope="module")
def mp4(clips: Path) -> bytes:
    return faces_clip(clips / "faces.mp4").read_bytes()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def upload(client: APIClient, content: bytes, name: str = "clip.mp4", **fields: object):
    return client.post("/video", {"video": SimpleUploadedFile(name, content), **fields}, format="multipart")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert len(error["message"]) > 10
    return error


def test_an_upload_is_accepted_pending_with_its_location(client, mp4, media_root, settings):
    response = upload(client, mp4, name="../../etc/evil name.avi")

    assert response.status_code == 202, response.content
    body = response.json()
    video_id = uuid.UUID(body["id"])
    assert response["Location"] == body["detail_url"] == f"http://testserver/video/{video_id}"
    assert body["status"] == "pending"
    assert (body["progress"], body["frames_done"], body["frames_total"]) == (0.0, 0, 10)
    assert [body[field] for field in ("url", "faces_url", "poster_url", "error", "track_count")] == [None] * 5
    assert (body["width"], body["height"], body["fps"], body["has_audio"]) == (320, 240, 10.0, False)
    assert body["duration"] == pytest.approx(1.0, abs=0.15)
    assert body["size"] == len(mp4)
    # The server's defaults, recorded with the video.
    assert body["annotate_style"] == "box"
    assert (body["detector_profile"], body["min_confidence"], body["detect_every"], body["min_face_size"]) == (
        settings.VIDEO_PROFILE,
        settings.VIDEO_MIN_CONFIDENCE,
        settings.VIDEO_DETECT_EVERY,
        0,
    )
    # Stored under its own folder with the extension the probe found, not the client's name.
    video = Video.objects.get()
    assert body["original_url"] == f"http://testserver/media/videos/{video.created_at:%Y/%m/%d}/{video_id}/original.mp4"
    [stored] = stored_files(media_root)
    assert stored.read_bytes() == mp4
    assert client.get(body["original_url"]).getvalue() == mp4


def test_the_options_are_kept(client, mp4):
    body = upload(client, mp4, annotate="blur", profile="accurate", min_confidence=0.6, detect_every=2).json()

    assert (body["annotate_style"], body["detector_profile"], body["min_confidence"], body["detect_every"]) == (
        "blur",
        "accurate",
        0.6,
        2,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("annotate", "sparkles"), ("detect_every", 0), ("detect_every", 11), ("min_confidence", 2), ("profile", "x")],
)
def test_a_bad_option_is_refused_with_400_and_nothing_is_kept(client, mp4, media_root, field, value):
    assert_error(upload(client, mp4, **{field: value}), 400, "invalid_parameter")
    assert not Video.objects.exists()
    assert stored_files(media_root) == []


def test_a_raw_body_with_a_video_content_type_works_with_options_in_the_query(client, mp4):
    response = client.post("/video?annotate=pixelate", data=mp4, content_type="video/mp4")

    assert response.status_code == 202, response.content
    assert response.json()["annotate_style"] == "pixelate"
    assert Video.objects.get().size == len(mp4)


@pytest.mark.parametrize(
    ("container", "codec", "extensions", "audio"),
    [
        ("matroska", "libx264", {"mkv"}, "libopus"),
        ("webm", "libvpx", {"webm"}, "libopus"),
        ("mov", "libx264", {"mov", "mp4"}, "aac"),  # one family: FFmpeg reads both with one demuxer
        ("avi", "mpeg4", {"avi"}, None),
    ],
)
def test_the_common_containers_are_accepted(client, clips, container, codec, extensions, audio):
    clip = clip_in(clips / f"clip.{container}", container=container, codec=codec, audio=audio)

    response = upload(client, clip.read_bytes(), name="clip.bin")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["has_audio"] is bool(audio)
    assert body["original_url"].rsplit(".", 1)[1] in extensions


@pytest.mark.parametrize("content_type", ["video/mp4", "video/webm"])
def test_a_photo_or_text_sent_as_video_gets_415_naming_the_formats(client, astronaut_jpeg, content_type):
    for content in (astronaut_jpeg, b"this is not a video at all\n" * 40):
        response = client.post("/video", data=content, content_type=content_type)
        error = assert_error(response, 415, "unsupported_video_format")
        assert "MP4" in error["message"]
    assert not Video.objects.exists()


def test_a_video_over_the_byte_limit_gets_413_naming_it(client, mp4, settings):
    settings.MAX_VIDEO_BYTES = len(mp4) - 1

    for response in (upload(client, mp4), client.post("/video", data=mp4, content_type="video/mp4")):
        error = assert_error(response, 413, "video_too_large")
        assert str(len(mp4) - 1) in error["message"]


def test_a_video_over_the_duration_limit_gets_413_naming_it(client, mp4, settings):
    settings.MAX_VIDEO_SECONDS = 0.5

    error = assert_error(upload(client, mp4), 413, "video_too_large")
    assert "0.5" in error["message"]


def test_a_video_over_the_pixel_limit_gets_413_naming_it(client, mp4, settings):
    settings.MAX_VIDEO_PIXELS = 320 * 200

    error = assert_error(upload(client, mp4), 413, "video_too_large")
    assert "64000" in error["message"].replace(",", "").replace(" ", "") or "320" in error["message"]


def test_a_truncated_video_gets_400(client, clips):
    clip = faces_clip(clips / "long.mp4", seconds=2)
    assert_error(upload(client, clip.read_bytes()[: clip.stat().st_size // 2]), 400, "corrupt_video")


def test_garbage_after_a_video_header_gets_400(client, mp4):
    assert_error(upload(client, mp4[:64] + bytes(range(256)) * 40), 400, "corrupt_video")


def test_no_video_or_an_empty_one_gets_400(client, mp4):
    misnamed = client.post("/video", {"image": SimpleUploadedFile("clip.mp4", mp4)}, format="multipart")
    assert_error(misnamed, 400, "video_missing")
    assert_error(upload(client, b""), 400, "video_empty")
    assert not Video.objects.exists()


def test_uploads_need_a_key_once_one_exists_and_reads_do_not(client, mp4):
    _, key = api_key_create(name="uploader")
    assert client.post("/video", data=mp4, content_type="video/mp4").status_code == 401

    response = client.post("/video", data=mp4, content_type="video/mp4", HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 202
    assert client.get(response["Location"]).status_code == 200


def test_uploads_past_the_rate_get_429(client, mp4, settings):
    settings.THROTTLE_RATES = {"uploads": "1/min", "reads": "100/min"}

    assert upload(client, mp4).status_code == 202
    response = upload(client, mp4)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_a_body_of_another_media_type_is_told_how_to_send_a_video(client, mp4):
    response = client.post("/video", data=mp4, content_type="application/octet-stream")

    error = assert_error(response, 415, "unsupported_media_type")
    assert "'video'" in error["message"]
    assert "video/*" in error["message"]


def test_uploads_past_the_videos_the_server_takes_get_503_with_retry_after(client, mp4, settings, media_root):
    settings.MAX_PENDING_VIDEOS = 2
    for status in (Video.Status.PENDING, Video.Status.RUNNING, Video.Status.DONE):
        Video.objects.create(
            status=status, size=1, min_confidence=0.4, detect_every=3, width=320, height=240, fps=10, duration=1
        )

    response = upload(client, mp4)

    error = assert_error(response, 503, "video_queue_full")
    assert "MAX_PENDING_VIDEOS" in error["message"]
    assert int(response["Retry-After"]) > 0
    assert Video.objects.count() == 3 and not stored_files(media_root)

    settings.MAX_PENDING_VIDEOS = 3
    assert upload(client, mp4).status_code == 202
