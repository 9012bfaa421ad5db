"""`make run` alone watches cameras: in embedded mode the server's own process watches them, and a
camera added in the admin (here its row) announces its state and its faces to the page's /faces."""

import asyncio
import json

from websockets.asyncio.client import connect

from tests.cameras import mjpeg_camera
from tests.live_server import embedded_configuration, running_server
from tests.test_watch_cameras_command import add_camera, camera_row

CAMERA_SECONDS = 20  # the table is read every 3 s, then the camera connects and its faces are detected


async def test_a_camera_added_while_the_server_runs_reaches_the_faces_websocket(tmp_path, astronaut_jpeg):
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, configuration) as server,
        mjpeg_camera(astronaut_jpeg, fps=10) as url,
    ):
        database = tmp_path / "db.sqlite3"
        async with connect(server.ws_url, proxy=None) as page:
            add_camera(database, name="door", url=url)
            messages = []
            async with asyncio.timeout(CAMERA_SECONDS):
                while not any(message["type"] == "detection.created" for message in messages):
                    messages.append(json.loads(await page.recv()))
        watching = camera_row(database, "door")

    states = [message["state"] for message in messages if message["type"] == "camera.status"]
    assert states[:2] == ["connecting", "connected"]
    (created,) = [message for message in messages if message["type"] == "detection.created"]
    assert (created["source"], created["camera"], created["face_count"]) == ("camera", "door", 1)
    assert created["url"].startswith(server.base_url + "/media/")
    assert watching["state"] == "connected"
