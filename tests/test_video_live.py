"""Videos on the real server in embedded mode (./entrypoint.sh, as `make run`): processed on its
background thread while /faces clients hear `video.progress` then `video.done`; a DELETE stops a
running video and leaves no file behind."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from tests.live_server import Server, embedded_configuration, running_server
from tests.video_clips import SLOW_OPTIONS, faces_clip, slow_clip, wait_until

SECONDS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("video_live")
    with embedded_configuration(root) as configuration:
        # Its temporary files where the tests can see them.
        configuration["TMPDIR"] = str(root)
        with running_server(root, configuration) as running:
            yield running


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video_live_clips")


def post_video(http: requests.Session, server: Server, clip: Path, **fields: object) -> dict:
    response = http.post(server.base_url + "/video", files={"video": clip.read_bytes()}, data=fields, timeout=30)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.json()["detail_url"]
    return response.json()


def messages_about(
    listener: ClientConnection, video_id: str, *, until: str, others: list[dict] | None = None
) -> list[dict]:
    """The /faces messages about this video, up to the first of type `until` (those about others
    meanwhile go to `others`)."""
    messages = []
    while not messages or messages[-1]["type"] != until:
        message = json.loads(listener.recv(timeout=SECONDS))
        if message.get("video", {}).get("id") == video_id:
            messages.append({**message, "at": time.monotonic()})
        elif others is not None:
            others.append(message)
    return messages


def test_faces_clients_hear_the_progress_then_the_video_done(server, http, clips):
    clip = faces_clip(clips / "two_seconds.mp4", seconds=2, fps=25)

    with connect(server.ws_url, proxy=None) as listener:
        accepted = post_video(http, server, clip, profile="accurate", detect_every=1)
        messages = messages_about(listener, accepted["id"], until="video.done")
    detail = http.get(accepted["detail_url"], timeout=10).json()

    *progress, done = messages
    assert {message["type"] for message in progress} == {"video.progress"}
    assert progress[0]["video"]["status"] == "running"
    assert all(message["video"]["status"] == "running" for message in progress)
    # At most about two a second (the first says it started), each further along.
    assert len(progress) <= 2 * (done["at"] - progress[0]["at"]) + 2
    done_so_far = [message["video"]["frames_done"] for message in progress]
    assert done_so_far == sorted(done_so_far)
    assert any(0 < message["video"]["progress"] < 1 and message["video"]["processing_fps"] for message in progress)
    assert {key: value for key, value in done.items() if key != "at"} == {"type": "video.done", "video": detail}
    assert detail["status"] == "done"
    assert detail["url"].startswith(server.base_url + "/media/videos/")  # absolute, for this client
    played = http.get(detail["url"], timeout=10)
    assert (played.status_code, played.headers["Content-Type"]) == (200, "video/mp4")


def test_deleting_a_running_video_stops_it_and_removes_every_file(server, http, clips):
    clip = slow_clip(clips / "slow.mp4")

    with connect(server.ws_url, proxy=None) as listener:
        accepted = post_video(http, server, clip, **SLOW_OPTIONS)
        folder = server.media_root / accepted["original_url"].split("/media/", 1)[1].rsplit("/", 1)[0]
        work = Path(server.env["TMPDIR"]) / "faces-videos" / accepted["id"]
        # Running, some frames done, its output being written.
        wait_until(lambda: http.get(accepted["detail_url"], timeout=10).json()["frames_done"] > 0, "the video to start")
        assert work.exists()

        deleted = http.delete(accepted["detail_url"], timeout=10)

        assert deleted.status_code == 204
        assert http.get(accepted["detail_url"], timeout=10).status_code == 404
        wait_until(lambda: not work.exists() and not folder.exists(), "the job to stop and its files to go", seconds=10)
        # It stopped: no done (or failed) message follows, and the server takes the next video at once.
        quick = post_video(http, server, faces_clip(clips / "quick.mp4", seconds=0.5))
        others: list[dict] = []
        messages = messages_about(listener, quick["id"], until="video.done", others=others)
    assert messages[-1]["video"]["status"] == "done"
    about_deleted = [message["type"] for message in others if message["video"]["id"] == accepted["id"]]
    assert set(about_deleted) <= {"video.progress"}
    assert "video cancelled" in server.output()
    listed = http.get(server.base_url + "/video", timeout=10).json()["results"]
    assert accepted["id"] not in [item["id"] for item in listed]
