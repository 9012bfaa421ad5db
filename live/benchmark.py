"""`make bench-cameras` (`python manage.py bench_cameras`): what watching cameras costs. A 1080p 25 fps
H.264 clip panning over a photo is served over RTSP by GStreamer (live/rtsp_server.py), and K = 1, 2,
4, 8 cameras of the real watcher (live.watcher.CameraWatch) sample it at 2 fps, decoding only what the
samples need and, for comparison, every frame. Per camera: CPU (this process's CPU time over the wall
time, shared out) and the sampled frames per second achieved. The tests serve their cameras the same way.
"""

import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from detection.loadbench import cpu_model, own_cpu_seconds
from live.models import Camera
from live.watcher import CameraWatch
from vision.video import open_video, sampled_frames

# Debian's Python, where GStreamer's bindings live (python3-gi, gir1.2-gst-rtsp-server-1.0).
GSTREAMER_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
SERVER_START_SECONDS = 15
WARM_UP_SECONDS = 3


class GStreamerMissing(RuntimeError):
    pass


@contextmanager
def rtsp_camera(clip: Path, *, port: int) -> Iterator[str]:
    """The clip served in real time at the URL yielded; stopped afterwards. Raises
    GStreamerMissing when GStreamer's RTSP server cannot start here."""
    if not Path(GSTREAMER_PYTHON).exists():
        raise GStreamerMissing(f"no {GSTREAMER_PYTHON} (Debian's python3 with python3-gi)")
    # Its complaints go to a file: a pipe nobody reads would fill up and stop the server.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [GSTREAMER_PYTHON, "-I", str(RTSP_SERVER), str(port), str(clip)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
        try:
            if not ready(process):
                process.kill()
                process.wait()
                errors.seek(0)
                complaint = errors.read().decode(errors="replace").strip()[-2000:]
                raise GStreamerMissing(f"GStreamer's RTSP server did not start: {complaint}")
            yield f"rtsp://127.0.0.1:{port}/cam"
        finally:
            process.terminate()
            process.wait(timeout=10)
            process.stdout.close()


def ready(process: subprocess.Popen) -> bool:
    """Whether the server said it listens, within SERVER_START_SECONDS."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        return bool(selector.select(timeout=SERVER_START_SECONDS)) and process.stdout.readline().strip() == "ready"


@dataclass(frozen=True)
class Run:
    cameras: int
    decoding: str  # "needed" (what the samples need) or "all" (every frame)
    wall_seconds: float
    cpu_percent_per_camera: float  # of one core
    cpu_ms_per_frame: float  # CPU time per frame sampled: what a frame costs, however busy the machine
    sampled_fps_per_camera: list[float]
    keeps_target: bool  # every camera at 95% of the target fps or more
    load_average: float  # the machine's, over the last minute: other work shares the cores


class BenchWatch(CameraWatch):
    """The watcher's decoding and detection, without a database: no state to keep."""

    def record_frames(self, sampled_fps: float) -> None:
        pass

    def set_state(self, state: str, *, last_error: str = "") -> None:
        self.state, self.last_error = state, last_error


def measure(url: str, *, cameras: int, fps: float, profile: str, decode_all: bool, seconds: float) -> Run:
    """K cameras of the real watcher on one stream for `seconds`, after a warm-up."""
    watches = [
        BenchWatch(
            # Faces are only announced (to this process's in-memory channel layer), not stored.
            Camera(id=-index, name=f"bench-{index}", url=url, sample_fps=fps, profile=profile, store_snapshots=False),
            watched_by="bench",
            timeouts=(10, 10),
            decode_all=decode_all,
        )
        for index in range(1, cameras + 1)
    ]
    for watch in watches:
        watch.start()
    time.sleep(WARM_UP_SECONDS)  # connecting, the first keyframe, the model's first run
    counts, cpu, started = [watch.frames_sampled for watch in watches], own_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    used = own_cpu_seconds() - cpu
    sampled = [watch.frames_sampled - count for watch, count in zip(watches, counts, strict=True)]
    for watch in watches:
        watch.stop()
    for watch in watches:
        watch.join(timeout=15)
    return Run(
        cameras=cameras,
        decoding="all" if decode_all else "needed",
        wall_seconds=round(wall, 1),
        cpu_percent_per_camera=round(100 * used / wall / cameras, 1),
        cpu_ms_per_frame=round(1000 * used / max(1, sum(sampled)), 1),
        sampled_fps_per_camera=[round(count / wall, 2) for count in sampled],
        keeps_target=min(sampled) / wall >= 0.95 * fps,
        load_average=round(os.getloadavg()[0], 2),
    )


@dataclass(frozen=True)
class DecodingRun:
    decoding: str  # "needed" or "all"
    cpu_percent: float  # of one core
    sampled_fps: float


def measure_decoding(url: str, *, fps: float, decode_all: bool, seconds: float) -> DecodingRun:
    """One camera's decoding alone, no detection: what the stream itself costs."""
    frames = -1  # counted from the first, once connected
    with open_video(url) as video:
        for _ in sampled_frames(video, fps=fps, decode_all=decode_all):
            if frames < 0:
                cpu, started = own_cpu_seconds(), time.monotonic()
            frames += 1
            if time.monotonic() - started >= seconds:
                break
    wall = time.monotonic() - started
    return DecodingRun(
        decoding="all" if decode_all else "needed",
        cpu_percent=round(100 * (own_cpu_seconds() - cpu) / wall, 1),
        sampled_fps=round(frames / wall, 2),
    )


def machine() -> dict:
    return {"cpu_model": cpu_model(), "cores": os.cpu_count()}


def report_table(runs: list[Run], *, fps: float) -> str:
    lines = [
        f"{'cameras':>7}  {'decoding':>8}  {'CPU/camera':>10}  {'CPU/frame':>9}  {'fps/camera (min-max)':>20}"
        f"  keeps {fps:g} fps  machine load",
    ]
    for run in runs:
        low, high = min(run.sampled_fps_per_camera), max(run.sampled_fps_per_camera)
        lines.append(
            f"{run.cameras:>7}  {run.decoding:>8}  {run.cpu_percent_per_camera:>9.1f}%  "
            f"{run.cpu_ms_per_frame:>6.1f} ms  {f'{low:.2f}-{high:.2f}':>20}  "
            f"{'yes' if run.keeps_target else 'no':>11}  {run.load_average:>12.2f}"
        )
    return "\n".join(lines)


def decoding_table(runs: list[DecodingRun]) -> str:
    return "\n".join(
        f"decoding alone, 1 camera, {run.decoding:>6}: {run.cpu_percent:.1f}% of a core, {run.sampled_fps:.2f} fps"
        for run in runs
    )


def runs_as_json(runs: list[Run] | list[DecodingRun]) -> list[dict]:
    return [asdict(run) for run in runs]
