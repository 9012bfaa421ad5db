"""`./entrypoint.sh cameras` (what `make cameras` and compose's cameras service run): the watcher in a
process of its own, on the server's database, stopped cleanly by SIGTERM as `docker stop` does."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cameras import mjpeg_camera
from tests.live_server import REPO_ROOT, STARTUP_SECONDS, stop


def database_environment(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONUNBUFFERED": "1", "SECRET_KEY": "test-secret"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", MEDIA_ROOT=str(tmp_path / "media"))
    for name in ("REDIS_URL", "TASKS_BACKEND", "CAMERAS_IN_SERVER"):
        env.pop(name, None)
    return env


def add_camera(database: Path, *, name: str, url: str) -> None:
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO live_camera (name, url, enabled, sample_fps, profile, min_confidence, min_face_size,"
            " cooldown_seconds, store_snapshots, annotate_style, created_at, state, last_error, watched_by)"
            " VALUES (?, ?, 1, 4, 'fast', 0.7, 0, 30, 1, 'box', datetime('now'), 'idle', '', '')",
            (name, url),
        )


def camera_row(database: Path, name: str) -> dict:
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM live_camera WHERE name = ?", (name,)).fetchone())


def camera_detections(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT d.source, c.name FROM detection_detection d JOIN live_camera c ON c.id = d.camera_id"
        ).fetchall()


def test_the_watcher_process_stores_detections_and_stops_cleanly_on_sigterm(tmp_path, astronaut_jpeg):
    # A watcher of its own, as beside servers sharing REDIS_URL (here the database alone).
    env = {**database_environment(tmp_path), "CAMERAS_IN_SERVER": "false"}
    database = tmp_path / "db.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True, capture_output=True
    )
    log_path = tmp_path / "cameras.log"
    with mjpeg_camera(astronaut_jpeg, fps=10) as url:
        add_camera(database, name="door", url=url)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                ["./entrypoint.sh", "cameras", "--shard", "1/1"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not camera_detections(database):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"No detection from the watcher:\n{log_path.read_text()}", False)
                time.sleep(0.1)
            watching = camera_row(database, "door")

            process.send_signal(signal.SIGTERM)  # entrypoint.sh execs the watcher
            assert process.wait(timeout=15) == 0
        finally:
            stop(process)

    assert watching["state"] == "connected" and watching["watched_by"].endswith(f":{process.pid}")
    assert camera_detections(database) == [("camera", "door")]
    stopped = camera_row(database, "door")
    assert (stopped["state"], stopped["watched_by"]) == ("idle", "")


def test_without_redis_the_command_says_the_server_watches_the_cameras(tmp_path):
    # Two watchers of the same cameras would store every face twice.
    env = database_environment(tmp_path)
    finished = subprocess.run(["./entrypoint.sh", "cameras"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)

    assert finished.returncode != 0
    assert "The server watches the cameras itself" in finished.stderr
