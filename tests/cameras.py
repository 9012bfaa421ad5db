"""Real cameras for the tests: H.264 clips made from photos with PyAV, served over RTSP in real time by
GStreamer's RTSP server (live/rtsp_server.py, the benchmark's), and an HTTP MJPEG camera in a thread
that sends frames for as long as it is watched."""

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from live.benchmark import GStreamerMissing, rtsp_camera
from tests.live_server import HOST, free_port
from vision.clips import still_frames
from vision.video import write_h264

# Two faces of ~140 px, side by side.
FACES_PHOTO = "19_Couple_Couple_19_835.jpg"
CLIP_FPS = 25


def clip_of(photo: np.ndarray, path: Path) -> Path:
    """Ten seconds of a camera looking at the photo, 640x480, a keyframe a second: longer than a test
    watches it (at its end the stream ends, and a watcher would reconnect)."""
    frames = still_frames(photo, width=640, height=480, frames=10 * CLIP_FPS)
    write_h264(path, frames, fps=CLIP_FPS, keyframe_interval=CLIP_FPS)
    return path


@contextmanager
def gstreamer_camera(clip: Path, *, port: int | None = None) -> Iterator[str]:
    """The clip served in a loop over RTSP; GStreamer is required in CI (.ci/run installs it)."""
    try:
        with rtsp_camera(clip, port=port or free_port()) as url:
            yield url
    except GStreamerMissing as error:
        if os.environ.get("CI"):
            pytest.fail(f"GStreamer's RTSP server is required in CI: {error}", False)
        pytest.skip(f"no GStreamer RTSP server: {error}")


@contextmanager
def mjpeg_camera(jpeg: bytes, *, fps: float = 10, stall_after: int | None = None) -> Iterator[str]:
    """An HTTP MJPEG camera (multipart/x-mixed-replace, as IP cameras send it) repeating one JPEG at
    `fps`; with `stall_after`, silent after that many frames, the connection left open."""
    stop = threading.Event()

    class Camera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            sent = 0
            while not stop.is_set():
                if stall_after is not None and sent >= stall_after:
                    stop.wait()
                    return
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                try:
                    self.wfile.write(part + jpeg + b"\r\n")
                except OSError:  # the client went away
                    return
                sent += 1
                time.sleep(1 / fps)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Camera)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/video.mjpg"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word: a camera that hangs."""
    listener = socket.create_server((HOST, 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
