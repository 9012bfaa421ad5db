"""GET /video/<id> and GET /video: a video processed in embedded mode (the server's background
thread, never the request), with its processed video, faces file and poster once done."""

import json
import uuid
from pathlib import Path

import av
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.video_clips import clip_in, drain_videos, faces_clip
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)  # the background thread sees committed rows only


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video_detail")


def upload(client: APIClient, clip: Path, **fields: object) -> dict:
    response = client.post(
        "/video", {"video": SimpleUploadedFile(clip.name, clip.read_bytes()), **fields}, format="multipart"
    )
    assert response.status_code == 202, response.content
    return response.json()


def finished(client: APIClient, accepted: dict) -> dict:
    drain_videos()
    return client.get(accepted["detail_url"]).json()


def test_a_video_is_processed_in_the_background_and_its_files_served(clips, media_root):
    client = APIClient()
    clip = clip_in(clips / "tone.mp4", container="mp4", codec="libx264", seconds=1, audio="aac")
    accepted = upload(client, clip, annotate="blur", detect_every=2)
    assert accepted["status"] == "pending"  # answered before any processing

    detail = finished(client, accepted)

    assert (detail["status"], detail["error"], detail["progress"]) == ("done", None, 1.0)
    assert detail["frames_done"] == detail["frames_total"] == 10
    assert detail["track_count"] >= 2  # two faces in the photo
    assert detail["created_at"] == accepted["created_at"]
    folder = f"videos/{Video.objects.get().created_at:%Y/%m/%d}/{accepted['id']}"
    assert detail["url"] == f"http://testserver/media/{folder}/video.mp4"
    assert detail["faces_url"] == f"http://testserver/media/{folder}/faces.json"
    assert detail["poster_url"] == f"http://testserver/media/{folder}/poster.jpg"
    processed = client.get(detail["url"])
    assert (processed.status_code, processed["Content-Type"]) == (200, "video/mp4")
    output = media_root / folder / "video.mp4"
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].frames == 10 or sum(1 for _ in container.decode(video=0)) == 10
    faces = client.get(detail["faces_url"])
    assert faces["Content-Type"] == "application/json"
    faces = json.loads(faces.getvalue())
    assert (faces["frames"], faces["width"], faces["height"]) == (10, 320, 240)
    assert len(faces["tracks"]) == detail["track_count"]
    assert all(len(box) == 6 for track in faces["tracks"] for box in track["boxes"])
    assert client.get(detail["poster_url"]).getvalue()[:2] == b"\xff\xd8"
    assert sorted(path.name for path in (media_root / folder).iterdir()) == [
        "faces.json",
        "original.mp4",
        "poster.jpg",
        "video.mp4",
    ]


def test_the_list_is_newest_first_paginated_and_filtered_by_status(clips):
    client = APIClient()
    clip = faces_clip(clips / "short.mp4", seconds=0.5)
    first = upload(client, clip)
    drain_videos()
    second = upload(client, clip)
    drain_videos()
    Video.objects.filter(id=first["id"]).update(status=Video.Status.FAILED, error_code="corrupt_video")

    listed = client.get("/video", {"page_size": 1}).json()
    done = client.get("/video", {"status": "done"}).json()

    assert listed["count"] == 2
    assert [item["id"] for item in listed["results"]] == [second["id"]]
    assert listed["next"].startswith("http://testserver/video?")
    assert [item["id"] for item in done["results"]] == [second["id"]]
    assert listed["results"][0] == client.get(second["detail_url"]).json()
    assert client.get("/video", {"status": "sideways"}).status_code == 400


def test_an_unknown_video_is_404_in_json():
    client = APIClient()
    for response in (client.get(f"/video/{uuid.uuid4()}"), client.delete(f"/video/{uuid.uuid4()}")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_media_is_served_in_byte_ranges_for_players_to_seek(clips):
    client = APIClient()
    clip = faces_clip(clips / "ranges.mp4", seconds=0.5)
    content = clip.read_bytes()
    url = upload(client, clip)["original_url"]
    drain_videos()

    whole = client.get(url)
    head = client.get(url, HTTP_RANGE="bytes=0-99")
    middle = client.get(url, HTTP_RANGE="bytes=100-")
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    past = client.get(url, HTTP_RANGE=f"bytes={len(content)}-")
    stale = client.get(url, HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE='"another-version"')

    assert (whole.status_code, whole["Accept-Ranges"]) == (200, "bytes")
    assert (head.status_code, head["Content-Length"]) == (206, "100")
    assert head["Content-Range"] == f"bytes 0-99/{len(content)}"
    assert b"".join(head.streaming_content) == content[:100]
    assert b"".join(middle.streaming_content) == content[100:]
    assert b"".join(tail.streaming_content) == content[-10:]
    assert (past.status_code, past["Content-Range"]) == (416, f"bytes */{len(content)}")
    assert past.json()["error"]["code"] == "range_not_satisfiable"
    assert stale.status_code == 200  # the file changed since: the whole of it
    assert b"".join(stale.streaming_content) == content
