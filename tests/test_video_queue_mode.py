"""Videos in queue mode (TASKS_BACKEND=rq): the real server answers 202 and queues the video on RQ's
"videos" queue; a real worker (./entrypoint.sh worker, which takes photos and videos) processes it,
and /faces clients hear it; a worker stopped mid-video queues it again for the next one, and a
worker killed mid-video leaves it failed, never pending or half done."""

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from websockets.sync.client import ClientConnection, connect

from tests.live_server import Server, queue_configuration, running_server, running_worker
from tests.video_clips import SLOW_OPTIONS, faces_clip, slow_clip, wait_until

SECONDS = 90  # a worker's first job loads the model, on a machine that may be busy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("video_queue_mode")
    with queue_configuration(root) as configuration, running_server(root, configuration) as running:
        yield running


def post_video(http: requests.Session, server: Server, clip: Path, **fields: object) -> dict:
    response = http.post(server.base_url + "/video", files={"video": clip.read_bytes()}, data=fields, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def last_message_about(listener: ClientConnection, video_id: str, *, types: set[str]) -> dict:
    while True:
        message = json.loads(listener.recv(timeout=SECONDS))
        if message.get("video", {}).get("id") == video_id and message["type"] in types:
            return message


def test_a_worker_processes_queued_videos_and_records_a_failure(server, http, tmp_path):
    clip = faces_clip(tmp_path / "clip.mp4", seconds=0.5)
    with connect(server.ws_url, proxy=None) as listener:
        good = post_video(http, server, clip, annotate="pixelate")
        broken = post_video(http, server, clip)
        # A worker that cannot read the original: e.g. on a machine that does not share the media.
        (server.media_root / broken["original_url"].split("/media/", 1)[1]).unlink()
        assert http.get(good["detail_url"], timeout=10).json()["status"] == "pending"  # no worker yet

        with running_worker(server) as worker:
            done = last_message_about(listener, good["id"], types={"video.done", "video.failed"})
            failed = last_message_about(listener, broken["id"], types={"video.done", "video.failed"})

    assert done == {"type": "video.done", "video": http.get(good["detail_url"], timeout=10).json()}
    assert (done["video"]["status"], done["video"]["annotate_style"]) == ("done", "pixelate")
    assert http.get(done["video"]["url"], timeout=10).headers["Content-Type"] == "video/mp4"
    assert failed["type"] == "video.failed"
    assert failed["video"]["error"]["code"] == "server_error"
    assert f"video {broken['id']} failed unexpectedly" in worker.output()


def test_a_stopped_worker_hands_its_video_on_and_a_killed_one_leaves_it_failed_without_a_half_file(
    server, http, tmp_path
):
    clip = slow_clip(tmp_path / "slow.mp4")

    def started() -> bool:
        return http.get(video["detail_url"], timeout=10).json()["frames_done"] > 0

    with connect(server.ws_url, proxy=None) as listener:
        with running_worker(server) as worker:
            video = post_video(http, server, clip, **SLOW_OPTIONS)
            wait_until(started, "the worker to start the video", seconds=SECONDS)
            worker.process.send_signal(signal.SIGTERM)  # as docker stop does: not an hour's wait, nor a loss
            assert worker.process.wait(timeout=30) == 0
        assert "video interrupted: pending again" in worker.output()
        assert http.get(video["detail_url"], timeout=10).json()["status"] == "pending"

        with running_worker(server) as worker:
            wait_until(started, "the next worker to take the video up", seconds=SECONDS)
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)
        assert http.get(video["detail_url"], timeout=10).json()["status"] == "running"

        # RQ finds the job abandoned once its heartbeat (renewed every 30 s while it runs) expires:
        # here at once, and the next worker's maintenance finds it.
        connection = redis.Redis.from_url(server.env["REDIS_URL"])
        prefix = server.env["RQ_KEY_PREFIX"]
        started = f"{prefix}:wip:videos"
        [(_, expires)] = connection.zrange(started, 0, -1, withscores=True)
        # Its heartbeat's, not its whole timeout's (hours for a video: 20 s per second allowed).
        assert expires - time.time() < 200
        jobs = [connection.hgetall(key) for key in connection.scan_iter(f"{prefix}:job:*")]
        assert {(job[b"origin"], job[b"timeout"]) for job in jobs if job.get(b"origin") == b"videos"} == {
            (b"videos", b"12000")
        }
        for member in connection.zrange(started, 0, -1):
            connection.zadd(started, {member: 1}, xx=True)
        connection.close()
        with running_worker(server):
            message = last_message_about(listener, video["id"], types={"video.done", "video.failed"})

    assert message["type"] == "video.failed"
    assert message["video"]["error"]["code"] == "worker_lost"
    folder = server.media_root / video["original_url"].split("/media/", 1)[1].rsplit("/", 1)[0]
    assert sorted(path.name for path in folder.iterdir()) == ["original.mp4"]
