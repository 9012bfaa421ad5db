"""Queue mode (TASKS_BACKEND=rq): an upload is answered 202 at once, a worker process detects the
faces, and the websocket clients hear of it when it is done or has failed.

The real server (./entrypoint.sh) with PostgreSQL and Redis, real workers (./entrypoint.sh worker,
what `make worker` and compose's worker service run), real photos and websocket clients.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from websockets.sync.client import ClientConnection, connect

from detection.models import Detection
from detection.services import detection_abandon
from facesite.task_backends import rq_queues, task_backends
from tests.conftest import ASTRONAUT_FACE, encode, overlap, stored_files
from tests.live_server import REPO_ROOT, Server, free_port, queue_configuration, running_server, running_worker

WORKER_SECONDS = 60  # a worker's first job loads the model, on a machine that may be busy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("queue_mode")
    with queue_configuration(root) as configuration, running_server(root, configuration) as running:
        yield running


def post_photo(http: requests.Session, server: Server, photo: bytes) -> requests.Response:
    return http.post(server.base_url + "/image", files={"image": ("photo.jpg", photo, "image/jpeg")}, timeout=30)


def message_about(listener: ClientConnection, detection_id: str) -> dict:
    """The first websocket message about this detection (a message about another one would be skipped)."""
    while True:
        message = json.loads(listener.recv(timeout=WORKER_SECONDS))
        if message["id"] == detection_id:
            return message


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WORKER_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_it_returns_202_pending_in_queue_mode_and_a_worker_does_the_detection(server, http, astronaut_jpeg):
    with connect(server.ws_url, proxy=None) as listener:
        response = post_photo(http, server, astronaut_jpeg)

        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "pending"
        assert response.headers["Location"] == accepted["detail_url"] == f"{server.base_url}/image/{accepted['id']}"
        assert [accepted[field] for field in ("url", "faces", "face_count", "error")] == [None] * 4
        assert http.get(accepted["original_url"], timeout=10).content == astronaut_jpeg
        # No worker yet: the server itself does not detect, the detection waits in the queue.
        assert http.get(accepted["detail_url"], timeout=10).json()["status"] == "pending"

        with running_worker(server):
            message = message_about(listener, accepted["id"])
            detail = http.get(accepted["detail_url"], timeout=10).json()

    assert message == {"type": "detection.created", **detail}
    assert detail["status"] == "done"
    assert (detail["width"], detail["height"], detail["face_count"], detail["error"]) == (512, 512, 1, None)
    assert overlap(detail["faces"][0]["box"], ASTRONAUT_FACE) > 0.6
    assert detail["created_at"] == accepted["created_at"]
    annotated = http.get(detail["url"], timeout=10)
    assert (annotated.status_code, annotated.headers["Content-Type"]) == (200, "image/jpeg")


def test_an_image_that_fails_in_the_worker_ends_failed_with_the_reason(server, http, astronaut_jpeg):
    truncated = astronaut_jpeg[:5000]  # a JPEG header and a fraction of its pixels: passes the request's checks

    with running_worker(server) as worker, connect(server.ws_url, proxy=None) as listener:
        response = post_photo(http, server, truncated)
        assert response.status_code == 202, response.text
        detection_id = response.json()["id"]
        message = message_about(listener, detection_id)
        detail = http.get(response.headers["Location"], timeout=10).json()
    logged = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]

    assert message == {"type": "detection.failed", **detail}
    assert (detail["status"], detail["url"], detail["faces"]) == ("failed", None, None)
    assert detail["error"]["code"] == "corrupt_image"
    assert "truncated" in detail["error"]["message"]
    failed = http.get(server.base_url + "/image", params={"status": "failed"}, timeout=10).json()["results"]
    done = http.get(server.base_url + "/image", params={"status": "done"}, timeout=10).json()["results"]
    assert detection_id in [item["id"] for item in failed]
    assert detection_id not in [item["id"] for item in done]
    [failure] = [entry for entry in logged if entry["message"] == "detection failed"]
    assert (failure["detection_id"], failure["error_code"]) == (detection_id, "corrupt_image")


def test_a_detection_that_breaks_unexpectedly_ends_failed_not_pending(server, http, coffee_png):
    # A worker that cannot read the original: e.g. on a machine that does not share the media.
    response = post_photo(http, server, coffee_png)
    assert response.status_code == 202, response.text
    accepted = response.json()
    original = server.media_root / accepted["original_url"].split("/media/", 1)[1]
    original.unlink()

    with connect(server.ws_url, proxy=None) as listener, running_worker(server) as worker:
        message = message_about(listener, accepted["id"])

    assert (message["type"], message["status"]) == ("detection.failed", "failed")
    assert message["error"]["code"] == "server_error"
    assert f"detection {accepted['id']} failed unexpectedly" in worker.output()  # with its traceback
    assert "FileNotFoundError" in worker.output()


def test_a_worker_told_to_stop_finishes_the_detection_in_hand(server, http, astronaut):
    slow = encode(astronaut.resize((6000, 4000)), "JPEG", quality=95)  # seconds with the `accurate` profile

    with connect(server.ws_url, proxy=None) as listener, running_worker(server) as worker:
        response = http.post(
            server.base_url + "/image", files={"image": slow}, data={"profile": "accurate"}, timeout=30
        )
        detection_id = response.json()["id"]
        wait_for(lambda: detection_id in worker.output(), "the worker to take the detection")
        assert http.get(response.headers["Location"], timeout=10).json()["status"] == "pending"
        worker.process.send_signal(signal.SIGTERM)  # as `docker stop` does; entrypoint.sh execs the worker

        message = message_about(listener, detection_id)
        assert worker.process.wait(timeout=WORKER_SECONDS) == 0

    assert (message["type"], message["status"], message["face_count"]) == ("detection.created", "done", 1)


def started_jobs_key(server: Server) -> str:
    return f"{server.env['RQ_KEY_PREFIX']}:wip:default"  # RQ's StartedJobRegistry: job -> heartbeat expiry


def expire_started_jobs(server: Server) -> None:
    """What time does to the jobs of a worker that died: RQ finds one abandoned once its heartbeat
    (a minute or more) has expired. Here it expires at once instead of the test waiting."""
    connection = redis.Redis.from_url(server.env["REDIS_URL"])
    for member in connection.zrange(started_jobs_key(server), 0, -1):
        connection.zadd(started_jobs_key(server), {member: 1}, xx=True)
    connection.close()


def test_a_detection_whose_worker_dies_ends_failed_not_pending(server, http, astronaut):
    slow = encode(astronaut.resize((6000, 4000)), "JPEG", quality=95)

    with connect(server.ws_url, proxy=None) as listener:
        with running_worker(server) as worker:
            response = http.post(
                server.base_url + "/image", files={"image": slow}, data={"profile": "accurate"}, timeout=30
            )
            detection_id = response.json()["id"]
            # Started, not only taken off the queue: a job lost in between is RQ's to requeue, not ours.
            connection = redis.Redis.from_url(server.env["REDIS_URL"])
            wait_for(lambda: connection.zcard(started_jobs_key(server)) > 0, "the worker to start the detection")
            connection.close()
            os.killpg(worker.process.pid, signal.SIGKILL)  # out of memory, or a host gone
            worker.process.wait(timeout=10)
        assert http.get(response.headers["Location"], timeout=10).json()["status"] == "pending"

        expire_started_jobs(server)
        with running_worker(server) as cleaner:  # a worker's maintenance, on its start, finds the abandoned job
            message = message_about(listener, detection_id)
            # Told to stop while it may still be logging what it found: it stops, and is not left for SIGKILL.
            cleaner.process.send_signal(signal.SIGTERM)
            assert cleaner.process.wait(timeout=10) == 0

    detail = http.get(response.headers["Location"], timeout=10).json()
    assert message == {"type": "detection.failed", **detail}
    assert detail["status"] == "failed"
    assert detail["error"]["code"] == "worker_lost"


def test_the_request_still_refuses_what_the_header_gives_away(server, http):
    response = post_photo(http, server, b"definitely not a photo\n" * 20)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_image_format"


def run_entrypoint(tmp_path, *args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "SECRET_KEY": "test-secret",
        "PORT": str(free_port()),
        **environment,
    }
    for name in ("REDIS_URL", "TASKS_BACKEND"):
        if name not in environment:
            env.pop(name, None)
    return subprocess.run(
        ["./entrypoint.sh", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [[], ["worker"]], ids=["server", "worker"])
def test_queue_mode_without_redis_refuses_to_start(tmp_path, command):
    result = run_entrypoint(tmp_path, *command, TASKS_BACKEND="rq")

    assert result.returncode != 0
    # One line that says what to do, before anything else: no traceback, no server announced.
    assert result.stderr.startswith("Configuration error: TASKS_BACKEND=rq needs REDIS_URL")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "http://localhost" not in result.stdout


def test_a_worker_refuses_to_start_in_embedded_mode(tmp_path):
    result = run_entrypoint(tmp_path, "worker")

    assert result.returncode != 0
    assert "There is no queue to work on" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_an_upload_the_queue_cannot_take_is_refused_and_nothing_kept(settings, coffee_png, media_root):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.TASKS = task_backends("rq", redis_url=unreachable)
    settings.RQ_QUEUES = rq_queues(unreachable)

    response = APIClient().post("/image", {"image": SimpleUploadedFile("p.png", coffee_png)}, format="multipart")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert int(response["Retry-After"]) > 0
    assert Detection.objects.count() == 0
    assert stored_files(media_root) == []


def test_the_queue_is_reached_within_a_few_seconds_or_not_at_all():
    timeout = "socket_connect_timeout"
    queue_url = rq_queues("redis://redis.example:6379/0")["default"]["URL"]
    chosen_url = rq_queues(f"redis://redis.example:6379/0?{timeout}=1")["default"]["URL"]

    assert redis.Redis.from_url(queue_url).connection_pool.connection_kwargs[timeout] == 5
    assert redis.Redis.from_url(chosen_url).connection_pool.connection_kwargs[timeout] == 1


@pytest.mark.django_db
def test_an_abandoned_job_fails_its_own_detection_and_only_while_it_is_pending(coffee_png):
    # RQ reports a job abandoned once its worker's heartbeat is gone; by then the detection may be done.
    def pending() -> Detection:
        return Detection.objects.create(status=Detection.Status.PENDING, original="detections/p/original.png")

    done_id = APIClient().post("/image", {"image": SimpleUploadedFile("p.png", coffee_png)}).json()["id"]
    abandoned, waiting = pending(), pending()

    detection_abandon(detection_id=done_id)
    detection_abandon(detection_id=str(abandoned.id))

    assert Detection.objects.get(id=done_id).status == Detection.Status.DONE
    abandoned.refresh_from_db()
    assert (abandoned.status, abandoned.error_code) == (Detection.Status.FAILED, "worker_lost")
    assert Detection.objects.get(id=waiting.id).status == Detection.Status.PENDING
