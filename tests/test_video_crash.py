"""A server stopped or killed mid-video (embedded mode): no half file is ever marked done, its
temporary files go, and at the next start a video a kill cut short ends failed with the reason while
those waiting run; a graceful stop sets the video it was running back to pending."""

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live_server import embedded_configuration, running_server, stop
from tests.video_clips import SLOW_OPTIONS, faces_clip, slow_clip, wait_until


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def post_video(http: requests.Session, base_url: str, clip: Path, **fields: object) -> dict:
    response = http.post(base_url + "/video", files={"video": clip.read_bytes()}, data=fields, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def detail(http: requests.Session, base_url: str, video_id: str) -> dict:
    return http.get(f"{base_url}/video/{video_id}", timeout=10).json()


def outputs(media_root: Path) -> list[str]:
    return sorted(path.name for path in media_root.rglob("*") if path.is_file() and path.name != "original.mp4")


def test_a_killed_server_fails_its_video_runs_the_waiting_one_when_back_and_a_stop_sets_one_back(root, http):
    slow, quick = slow_clip(root / "slow.mp4"), faces_clip(root / "quick.mp4", seconds=0.5)
    work_root = root / "faces-videos"
    with embedded_configuration(root) as configuration:
        configuration["TMPDIR"] = str(root)  # its temporary files where the test sees them
        with running_server(root, configuration) as server:
            killed = post_video(http, server.base_url, slow, **SLOW_OPTIONS)
            waiting = post_video(http, server.base_url, quick)  # behind it: one video at a time
            wait_until(lambda: detail(http, server.base_url, killed["id"])["frames_done"] > 0, "the video to start")
            assert detail(http, server.base_url, waiting["id"])["status"] == "pending"

            os.killpg(server.process.pid, signal.SIGKILL)  # out of memory, a power cut
            server.process.wait(timeout=10)
            assert (work_root / killed["id"]).exists()  # what the kill left behind

        with running_server(root, configuration) as server:
            failed = detail(http, server.base_url, killed["id"])
            wait_until(lambda: detail(http, server.base_url, waiting["id"])["status"] == "done", "the waiting video")

            assert failed["status"] == "failed"
            assert failed["error"]["code"] == "worker_lost"
            assert "stopped" in failed["error"]["message"]
            assert (failed["url"], failed["faces_url"], failed["poster_url"]) == (None, None, None)
            assert not (work_root / killed["id"]).exists()
            assert outputs(server.media_root) == ["faces.json", "poster.jpg", "video.mp4"]  # the waiting one's

            # A graceful stop (SIGTERM, as docker stop and Ctrl-C) mid-video: pending again, for the next start.
            stopped = post_video(http, server.base_url, slow, **SLOW_OPTIONS)
            wait_until(lambda: detail(http, server.base_url, stopped["id"])["frames_done"] > 0, "the video to start")

            stop(server.process)

            assert server.process.returncode == 0
            assert "video interrupted: pending again" in server.output()
            assert not (work_root / stopped["id"]).exists()
            assert outputs(server.media_root) == ["faces.json", "poster.jpg", "video.mp4"]
            with sqlite3.connect(root / "db.sqlite3") as database:
                status = database.execute(
                    "SELECT status, frames_done FROM videos_video WHERE id = ?", [stopped["id"].replace("-", "")]
                ).fetchone()
            assert status == ("pending", 0)
