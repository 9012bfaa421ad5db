"""Kill the server mid-upload: afterwards no row lacks its files, and check_media clears stray files."""

import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import requests
from PIL import Image
from skimage import data

from tests.live_server import REPO_ROOT, embedded_configuration, pending_detections, running_server, wait_for


def manage(server, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=server.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_killed_server_leaves_no_row_without_files(tmp_path):
    # A large photo keeps each upload busy for a while, so the kill lands in the middle of some.
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((3000, 3000)).save(buffer, "JPEG", quality=95)
    photo = buffer.getvalue()
    answered = []

    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:

        def keep_uploading() -> None:
            session = requests.Session()
            session.trust_env = False
            for _ in range(20):
                try:
                    response = session.post(server.base_url + "/image", files={"image": photo}, timeout=30)
                except requests.ConnectionError:
                    return  # the server is gone
                answered.append(response.status_code)

        clients = [threading.Thread(target=keep_uploading) for _ in range(4)]
        for client in clients:
            client.start()
        # Observed, not assumed: some uploads are answered and one is being detected when the kill lands.
        wait_for(lambda: answered and pending_detections(server), 60, "upload answered and another in flight")
        os.killpg(server.process.pid, signal.SIGKILL)  # no chance to clean up
        for client in clients:
            client.join(timeout=60)

        assert answered and all(status == 201 for status in answered)
        # The server is dead: nothing is in flight, so no file is too young to judge (--min-age 0m),
        # and these files are its database's alone.
        before = manage(server, "check_media", "--min-age", "0m")
        manage(server, "check_media", "--repair", "--delete-orphan-files", "--min-age", "0m")
        after = manage(server, "check_media", "--min-age", "0m")

    # Files are written before the row is committed: a crash can leave files, never a row without them.
    assert "0 detection(s) without files found" in before, before
    assert "0 orphan file(s) found, 0 detection(s) without files found" in after, after
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = {row_id.replace("-", "") for (row_id,) in db.execute("SELECT id FROM detection_detection")}
    folders = {
        path.name.replace("-", ""): sorted(f.name for f in path.iterdir()) for path in detection_folders(tmp_path)
    }
    assert rows, "some uploads finished before the kill"
    assert set(folders) == rows
    assert all(files == ["annotated.jpg", "original.jpg"] for files in folders.values())


def detection_folders(root):
    # Repair deletes orphan files and the folders they leave empty.
    return [path for path in (root / "media" / "detections").glob("*/*/*/*") if path.is_dir()]
