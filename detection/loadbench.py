"""The load benchmark behind `make bench-load`: the real server, started by ./entrypoint.sh as users
start it, under concurrent uploads and thousands of /faces websockets, with its memory.

Uploads are set beside a *floor*: the same image work (decode, detect, draw, encode) in a plain loop
in this process, with no web server at all; and beside the same work on as many threads as the
server has detection slots, the most this machine does without a server.

The broadcast is set beside a *yardstick*: detection/bare_broadcaster.py, websockets' own
`broadcast()` with no framework and no detection, measured in the same run by the same client.
"""

import asyncio
import contextlib
import io
import itertools
import json
import mimetypes
import multiprocessing
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import redis
import requests
from django.conf import settings
from PIL import Image, ImageOps
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from detection.benchmark import percentile
from detection.pipeline import annotate_photo
from facesite.rlimits import raise_open_file_limit

HOST = "127.0.0.1"
STARTUP_SECONDS = 120
# Handshakes in flight at once: thousands at a time would overflow Daphne's accept backlog (50).
CONNECT_BATCH = 200
# How long after its POST a message may still arrive and count as delivered.
DELIVERY_SECONDS = 10.0
# The targets of issue 11 for the broadcast and for uploads.
BROADCAST_MARGIN_MS = 50  # over the upload's own time plus the bare broadcaster's p99, at 1,000 listeners
CROWD_P99_MS = 1000  # POST to the last client, 5,000 listeners
ANSWER_SLOWDOWN = 1.2  # the upload's answer with 1,000 listeners against none
SLOTS_FLOOR_RATIO = 0.85  # 16 concurrent uploaders against the slots-wide floor
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class LoadConfig:
    photos: list[Photo]
    fanout_photo: Photo  # the smallest: fan-out time should be mostly delivery, not detection
    clients: list[int]  # concurrent uploaders, one level each
    uploads: int  # per upload level
    websockets: list[int]  # listeners on /faces, one level each (cumulative: the same server)
    fanout_uploads: int  # per fan-out level, one at a time
    broadcast_photo: Photo  # a real photo at 512 px: a broadcast with real detection work around it
    broadcast_listeners: list[int]  # listeners, one broadcast level each (the same connections as fan-out)
    broadcast_uploads: int = 20  # per broadcast level, after an untimed one
    broadcast_interval: float = 0.5  # seconds between their POSTs, whether or not they were delivered
    workers: int = 1
    redis_url: str = ""
    layer: str = "core"


def load_photos(folder: Path) -> list[Photo]:
    photos = []
    for path in sorted(folder.iterdir()):
        content_type = mimetypes.guess_type(path.name)[0] or ""
        if path.is_file() and content_type.startswith("image/"):
            photos.append(Photo(path.name, path.read_bytes(), content_type))
    return photos


def downscaled(photo: Photo, long_side: int) -> Photo:
    """`photo` shrunk to `long_side` pixels on its longer side, as a JPEG named after its size."""
    with Image.open(io.BytesIO(photo.data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((long_side, long_side))
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=90)
    return Photo(f"{Path(photo.name).stem}-{image.width}x{image.height}.jpg", encoded.getvalue(), "image/jpeg")


def milliseconds(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(values, 0.5), 1),
        "p95": round(percentile(values, 0.95), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


# --- The server and its processes ---------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/faces"

    def pids(self) -> list[int]:
        # With WORKERS > 1 the entrypoint's process supervises; its children are the Daphne processes.
        return children(self.process.pid) or [self.process.pid]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class BareBroadcaster:
    process: subprocess.Popen
    upload_port: int
    websocket_port: int

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.upload_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.websocket_port}/"

    def pids(self) -> list[int]:
        return [self.process.pid]


class Broadcaster(Protocol):
    """What the broadcast measurement needs of a server: ours or the bare one."""

    @property
    def base_url(self) -> str: ...

    @property
    def ws_url(self) -> str: ...

    def pids(self) -> list[int]: ...


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended while we looked
            # The parent's pid is the second field after the command name, which may contain spaces.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(
    root: Path,
    *,
    workers: int = 1,
    redis_url: str = "",
    layer: str = "core",
    settings_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """./entrypoint.sh with its data under `root`, rate limits off, stopped with SIGTERM at the end;
    `settings_env` sets more of its settings."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PORT": str(port),
        "HOST": HOST,
        "DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}",
        "MEDIA_ROOT": str(root / "media"),
        "STATIC_ROOT": str(root / "static"),
        "SECRET_KEY": "bench-load",
        "THROTTLE_UPLOADS": "",
        "THROTTLE_READS": "",
        # Every client comes from 127.0.0.1: the per-address cap would refuse all but 50.
        "WEBSOCKET_MAX_PER_CLIENT": "100000",
        "MAX_CONNECTIONS_PER_CLIENT": "0",  # every client of the benchmark comes from 127.0.0.1
        "WORKERS": str(workers),
        "PYTHONUNBUFFERED": "1",
        **(settings_env or {}),
    }
    for name in ("REDIS_URL", "CHANNEL_LAYER", "CHANNEL_LAYER_PREFIX"):
        env.pop(name, None)
    prefix = f"bench-load-{uuid.uuid4().hex[:8]}"
    if redis_url:
        env.update(REDIS_URL=redis_url, CHANNEL_LAYER=layer, CHANNEL_LAYER_PREFIX=prefix)
    log_path = root / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["./entrypoint.sh"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so SIGTERM reaches the shell's children too
        )
    server = Server(process, port, log_path)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        stop(process)
        if redis_url:
            # The core layer's group of thousands of channels would otherwise linger in Redis for a day.
            connection = redis.Redis.from_url(redis_url)
            for key in connection.scan_iter(match=f"{prefix}*", count=1000):
                connection.delete(key)


@contextlib.contextmanager
def running_bare_broadcaster(message_bytes: int) -> Iterator[BareBroadcaster]:
    upload_port, websocket_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "detection.bare_broadcaster"),
            *("--upload-port", str(upload_port), "--ws-port", str(websocket_port)),
            *("--message-bytes", str(message_bytes)),
        ],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"The bare broadcaster did not start (exit code {process.wait()}).")
        yield BareBroadcaster(process, upload_port, websocket_port)
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"The server exited with {server.process.returncode}:\n{server.log_tail()}")
        # Not listening yet (migrate runs first), or, with WORKERS > 1, listening before Django has loaded.
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            if requests.get(server.base_url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"The server did not answer /healthz within {STARTUP_SECONDS} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)  # the server lets uploads in flight finish, up to 30 s
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime and stime
    return total / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def memory(server: Server, phase: str) -> dict:
    """Current and peak resident memory of each Daphne process, in MiB."""
    processes = []
    for pid in server.pids():
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        processes.append(
            {
                "pid": pid,
                "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
                "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
            }
        )
    return {"phase": phase, "processes": processes}


# --- Uploads: throughput and latency ------------------------------------------------------------


def post_photo(session: requests.Session, base_url: str, photo: Photo) -> requests.Response:
    return session.post(base_url + "/image", files={"image": (photo.name, photo.data, photo.content_type)}, timeout=120)


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment must not sit between us and localhost
    return session


def process_photo(photo: Photo) -> None:
    """What an upload costs without the web server: the detection task's own image work."""
    annotate_photo(photo.data, min_confidence=settings.DETECTOR_MIN_CONFIDENCE, profile=settings.DETECTOR_PROFILE)


def floor_run(batch: list[Photo], slots: int) -> tuple[float, list[float]]:
    """The same photos on `slots` threads of this process (the server's detection slots in all), no server:
    seconds in all, and milliseconds per photo."""
    durations: list[float] = []

    def timed(photo: Photo) -> None:
        started = time.perf_counter()
        process_photo(photo)
        durations.append((time.perf_counter() - started) * 1000)

    with ThreadPoolExecutor(slots) as pool:
        started = time.perf_counter()
        list(pool.map(timed, batch))
        return time.perf_counter() - started, durations


def upload_level(server: Server, batch: list[Photo], clients: int) -> dict:
    """`clients` threads, each uploading the next photo of `batch` as soon as its last one is answered."""
    jobs = itertools.count()  # next() on it is atomic under the GIL: each photo goes to one client
    outcomes: list[tuple[int | str, float]] = []

    def client() -> None:
        with new_session() as session:
            while (index := next(jobs)) < len(batch):
                started = time.perf_counter()
                try:
                    status: int | str = post_photo(session, server.base_url, batch[index]).status_code
                except requests.RequestException as error:
                    status = type(error).__name__
                outcomes.append((status, (time.perf_counter() - started) * 1000))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ok = [duration for status, duration in outcomes if status == 201]
    return {
        "clients": clients,
        "uploads": len(batch),
        "ok": len(ok),
        "errors": dict(Counter(str(status) for status, _ in outcomes if status != 201)),
        "per_second": round(len(ok) / elapsed, 2),
        "ms": milliseconds(ok),  # of the 201s: a refusal is quick and would flatter the percentiles
    }


def detection_slots(config: LoadConfig) -> int:
    return settings.DETECTION_WORKERS * config.workers


def warm_up(server: Server, config: LoadConfig) -> None:
    """Load the detector in every server process (and this one) before anything is timed."""
    process_photo(config.photos[0])
    # All at once: the kernel spreads them over the processes.
    upload_level(server, [config.photos[0]] * detection_slots(config), detection_slots(config))


def floor_summary(batch: list[Photo], threads: int, runs: list[tuple[float, list[float]]]) -> dict:
    return {
        "threads": threads,
        "per_second": round(len(runs) * len(batch) / sum(seconds for seconds, _ in runs), 2),
        "runs_per_second": [round(len(batch) / seconds, 2) for seconds, _ in runs],
        "ms": milliseconds([ms for _, durations in runs for ms in durations]),
    }


def throughput(server: Server, config: LoadConfig, log: Log) -> list[dict]:
    batch = [config.photos[index % len(config.photos)] for index in range(config.uploads)]
    levels = []
    for clients in config.clients:
        before = [floor_run(batch, threads) for threads in (1, detection_slots(config))]
        server_cpu, own_cpu = cpu_seconds(server.pids()), own_cpu_seconds()
        level = upload_level(server, batch, clients)
        level["server_cpu_s"] = round(cpu_seconds(server.pids()) - server_cpu, 2)
        level["client_cpu_s"] = round(own_cpu_seconds() - own_cpu, 2)
        after = [floor_run(batch, threads) for threads in (1, detection_slots(config))]
        # The floor is a plain loop, one photo after another; beside it, as many photos at once as
        # the server has detection slots (the most this machine does without a server).
        level["floor"], level["parallel_floor"] = (
            floor_summary(batch, threads, [runs[index] for runs in (before, after)])
            for index, threads in enumerate((1, detection_slots(config)))
        )
        level["ratio"] = round(level["per_second"] / level["floor"]["per_second"], 2)
        level["parallel_ratio"] = round(level["per_second"] / level["parallel_floor"]["per_second"], 2)
        log(f"uploads, {clients} clients: {level['per_second']}/s (floor {level['floor']['per_second']}/s)")
        levels.append(level)
    return levels


# --- Websocket fan-out ------------------------------------------------------------------------


Arrival = tuple[float, int, bytes]  # (monotonic time, client, the message's raw text)


class Listener(asyncio.Protocol):
    """One /faces client on websockets' Sans-I/O protocol, timestamping each message as its bytes arrive.

    No task, queue or future per message, as websockets' asyncio client has: with thousands of them
    in one process, that client would set the times it is meant to measure."""

    def __init__(self, url: str, client: int, arrivals: list[Arrival]) -> None:
        self.protocol = ClientProtocol(parse_uri(url))
        self.client = client
        self.arrivals = arrivals
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self.send()

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:  # servers here send each message whole, in one frame
                    self.arrivals.append((arrived, self.client, event.data))
            elif self.protocol.handshake_exc is not None:
                self.opened.set_exception(self.protocol.handshake_exc)
            else:
                self.opened.set_result(None)
        self.send()  # pongs, and the close handshake

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self.send()

    def connection_lost(self, error: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(error or ConnectionError("closed during the handshake"))
        self.closed.set_result(None)

    def send(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.protocol.close_expected():
            self.transport.close()

    async def close(self) -> None:
        if not self.closed.done():
            self.protocol.send_close()
            self.send()
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 10)
            except TimeoutError:
                self.transport.abort()


@dataclass
class Listeners:
    connections: list[Listener] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    numbers: Iterator[int] = field(default_factory=itertools.count)  # one per client, in the order they connect

    async def connect(self, url: str) -> Listener:
        uri = parse_uri(url)
        _, listener = await asyncio.get_running_loop().create_connection(
            lambda: Listener(url, next(self.numbers), self.arrivals), uri.host, uri.port
        )
        await asyncio.wait_for(asyncio.shield(listener.opened), 60)
        return listener

    async def grow_to(self, url: str, count: int) -> None:
        while len(self.connections) + sum(self.failures.values()) < count:
            size = min(CONNECT_BATCH, count - len(self.connections) - sum(self.failures.values()))
            for result in await asyncio.gather(*(self.connect(url) for _ in range(size)), return_exceptions=True):
                if isinstance(result, Listener):
                    self.connections.append(result)
                else:
                    self.failures[type(result).__name__] += 1

    def dropped(self) -> int:
        """Listeners whose connection ended."""
        return sum(listener.closed.done() for listener in self.connections)

    async def close(self) -> None:
        for start in range(0, len(self.connections), CONNECT_BATCH):
            await asyncio.gather(*(listener.close() for listener in self.connections[start : start + CONNECT_BATCH]))


async def fanout_level(server: Broadcaster, listeners: Listeners, config: LoadConfig) -> dict:
    """Upload one photo at a time; time from each POST to each listener's message."""
    clients = len(listeners.connections)
    first = len(listeners.arrivals)
    sent_at: dict[str, float] = {}
    response_ms: list[float] = []
    errors: Counter[str] = Counter()
    server_cpu, own_cpu, started = cpu_seconds(server.pids()), own_cpu_seconds(), time.monotonic()
    with new_session() as session:
        for _ in range(config.fanout_uploads):
            mark = len(listeners.arrivals)
            sent = time.monotonic()
            response = await asyncio.to_thread(post_photo, session, server.base_url, config.fanout_photo)
            response_ms.append((time.monotonic() - sent) * 1000)
            if response.status_code != 201:
                errors[str(response.status_code)] += 1
                continue
            sent_at[response.json()["id"]] = sent
            while len(listeners.arrivals) - mark < clients and time.monotonic() < sent + DELIVERY_SECONDS:
                await asyncio.sleep(0.005)
    elapsed = time.monotonic() - started
    server_cpu, own_cpu = cpu_seconds(server.pids()) - server_cpu, own_cpu_seconds() - own_cpu

    arrivals = listeners.arrivals[first:]
    delivered: set[tuple[str, int]] = set()
    latencies = []
    for arrived, client, raw in arrivals:
        detection_id = json.loads(raw)["id"]
        if detection_id in sent_at and (detection_id, client) not in delivered:
            delivered.add((detection_id, client))
            latencies.append((arrived - sent_at[detection_id]) * 1000)
    return {
        "clients": clients,
        "connect_failures": dict(listeners.failures),
        "dropped": listeners.dropped(),
        "uploads": config.fanout_uploads,
        "upload_errors": dict(errors),
        "expected": clients * len(sent_at),
        "delivered": len(delivered),
        "ms": milliseconds(latencies),
        "response_ms_p50": round(percentile(response_ms, 0.5), 1),
        "message_bytes": len(arrivals[0][2]) if arrivals else 0,
        "seconds": round(elapsed, 2),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(own_cpu, 2),
    }


async def listener_levels(
    target: Broadcaster, config: LoadConfig, fanout_levels: list[int], log: Log, after: Callable[[int], None]
) -> tuple[list[dict], dict]:
    """The fan-out levels and the broadcast levels, on one growing set of listeners; `after(count)` after each
    count. With broadcast levels, the upload's answer time with no listeners first."""
    listeners = Listeners()
    with uploaders() as pool:
        idle = await broadcast_level(target, listeners, pool, config) if config.broadcast_listeners else None
        fanouts, broadcasts = [], {"idle": idle, "levels": []}
        try:
            for count in sorted(set(fanout_levels) | set(config.broadcast_listeners)):
                started = time.monotonic()
                await listeners.grow_to(target.ws_url, count)
                connect_seconds = round(time.monotonic() - started, 1)
                if count in fanout_levels:
                    level = await fanout_level(target, listeners, config)
                    fanouts.append({**level, "connect_seconds": connect_seconds})
                    log(f"fan-out, {count} websockets: {level['delivered']}/{level['expected']} delivered")
                if count in config.broadcast_listeners:
                    level = await broadcast_level(target, listeners, pool, config)
                    broadcasts["levels"].append({**level, "listeners": count, "connect_seconds": connect_seconds})
                    log(f"broadcast, {count} websockets: {level['delivered']}/{level['expected']} delivered")
                after(count)
        finally:
            await listeners.close()
    return fanouts, broadcasts


# --- The broadcast: paced uploads of a 512-px photo, beside the bare broadcaster -------------------


@dataclass(frozen=True)
class Upload:
    sent: float  # monotonic, just before the POST
    answer_ms: float
    status: int | str
    detection_id: str | None  # what its websocket messages carry


def timed_upload(base_url: str, photo: Photo) -> Upload:
    with new_session() as session:
        sent = time.monotonic()
        try:
            response = post_photo(session, base_url, photo)
        except requests.RequestException as error:
            return Upload(sent, (time.monotonic() - sent) * 1000, type(error).__name__, None)
        answer_ms = (time.monotonic() - sent) * 1000
        created = response.status_code == 201
        return Upload(sent, answer_ms, response.status_code, str(response.json()["id"]) if created else None)


# Uploaders of the broadcast levels: processes of their own, so that the thousands of listeners this
# process reads do not hold the uploaders' answers (one GIL) and count as the server's time.
UPLOADER_PROCESSES = 4


def uploaders() -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(UPLOADER_PROCESSES, mp_context=multiprocessing.get_context("spawn"))
    list(pool.map(uploader_ready, range(UPLOADER_PROCESSES)))  # started, and this module imported, before any timing
    return pool


def uploader_ready(_: int) -> None:
    pass


async def paced_uploads(
    pool: ProcessPoolExecutor, base_url: str, photo: Photo, count: int, interval: float
) -> list[Upload]:
    """`count` uploads, one every `interval` seconds, each sent on time whether the ones before are answered or not."""
    loop = asyncio.get_running_loop()
    start = loop.time()  # the same clock as time.monotonic(), in every process

    async def upload(index: int) -> Upload:
        await asyncio.sleep(start + index * interval - loop.time())
        return await loop.run_in_executor(pool, timed_upload, base_url, photo)

    return list(await asyncio.gather(*(upload(index) for index in range(count))))


async def wait_for_deliveries(listeners: Listeners, mark: int, uploads: list[Upload]) -> None:
    """Until every listener has a message per created upload, or DELIVERY_SECONDS after the last POST."""
    expected = len(listeners.connections) * sum(upload.detection_id is not None for upload in uploads)
    deadline = max(upload.sent for upload in uploads) + DELIVERY_SECONDS
    while len(listeners.arrivals) - mark < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def delivery_times(sent_at: dict[str, float], arrivals: list[Arrival], clients: int) -> dict[str, dict | int]:
    """Milliseconds from each POST to each client's first message about it, over all deliveries, and per
    upload to the last client that received it (whether or not all of them did)."""
    arrived_at: dict[tuple[str, int], float] = {}
    for arrived, client, raw in arrivals:
        key = (str(json.loads(raw)["id"]), client)
        if key[0] in sent_at and key not in arrived_at:
            arrived_at[key] = arrived
    last: dict[str, float] = {}
    received: Counter[str] = Counter()
    for (detection_id, _), arrived in arrived_at.items():
        last[detection_id] = max(last.get(detection_id, 0.0), (arrived - sent_at[detection_id]) * 1000)
        received[detection_id] += 1
    return {
        "expected": clients * len(sent_at),
        "delivered": len(arrived_at),
        "uploads_everyone_received": sum(received[detection_id] == clients for detection_id in sent_at),
        "ms": milliseconds([(arrived - sent_at[key[0]]) * 1000 for key, arrived in arrived_at.items()]),
        "last_client_ms": milliseconds(list(last.values())),
    }


async def broadcast_level(
    target: Broadcaster, listeners: Listeners, pool: ProcessPoolExecutor, config: LoadConfig
) -> dict:
    """One untimed upload (a new input size for the detector, the first message for the client), then
    config.broadcast_uploads paced ones; times from each POST to its answer and to each listener's message."""
    first = len(listeners.arrivals)
    await wait_for_deliveries(
        listeners, first, await paced_uploads(pool, target.base_url, config.broadcast_photo, 1, 0)
    )
    message_bytes = len(listeners.arrivals[first][2]) if len(listeners.arrivals) > first else 0
    mark = len(listeners.arrivals)
    server_cpu, own_cpu = cpu_seconds(target.pids()), own_cpu_seconds()
    uploads = await paced_uploads(
        pool, target.base_url, config.broadcast_photo, config.broadcast_uploads, config.broadcast_interval
    )
    await wait_for_deliveries(listeners, mark, uploads)
    server_cpu, own_cpu = cpu_seconds(target.pids()) - server_cpu, own_cpu_seconds() - own_cpu
    sent_at = {upload.detection_id: upload.sent for upload in uploads if upload.detection_id is not None}
    return {
        "clients": len(listeners.connections),
        "connect_failures": dict(listeners.failures),
        "dropped": listeners.dropped(),
        "uploads": len(uploads),
        "upload_errors": dict(Counter(str(upload.status) for upload in uploads if upload.detection_id is None)),
        "answer_ms": milliseconds([upload.answer_ms for upload in uploads if upload.detection_id is not None]),
        **delivery_times(sent_at, listeners.arrivals[mark:], len(listeners.connections)),
        "message_bytes": message_bytes,
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(own_cpu, 2),
    }


async def yardstick(config: LoadConfig, message_bytes: int, log: Log) -> dict:
    """The broadcast levels against the bare broadcaster, sending messages as long as ours."""
    with running_bare_broadcaster(message_bytes) as bare:
        _, broadcasts = await listener_levels(
            bare, config, [], log=lambda line: log(f"bare broadcaster: {line}"), after=lambda count: None
        )
    return broadcasts


# --- The whole run ----------------------------------------------------------------------------


def run_load_benchmark(config: LoadConfig, log: Log) -> dict:
    raise_open_file_limit()  # thousands of websockets here too
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as root,
        running_server(Path(root), workers=config.workers, redis_url=config.redis_url, layer=config.layer) as server,
    ):
        time.sleep(2)  # with WORKERS > 1, one process answering does not mean the others have finished starting
        snapshots = [memory(server, "at rest")]
        warm_up(server, config)
        uploads = throughput(server, config, log)
        snapshots.append(memory(server, "after uploads"))

        def snapshot(count: int) -> None:
            snapshots.append(memory(server, f"with {count} websockets"))

        fanouts, broadcasts = asyncio.run(listener_levels(server, config, config.websockets, log, after=snapshot))
    # The same size of message as ours, measured just now.
    message_bytes = max((level["message_bytes"] for level in broadcasts["levels"]), default=0)
    bare = asyncio.run(yardstick(config, message_bytes, log)) if config.broadcast_listeners else None
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "processor": cpu_model(),
            "cores": os.cpu_count(),
            # At the end of the run, over 1, 5 and 15 minutes: how much else wanted these cores.
            "load_average": [round(load, 2) for load in os.getloadavg()],
            "python": platform.python_version(),
        },
        "server": {
            "workers": config.workers,
            "channel_layer": f"redis {config.layer}" if config.redis_url else "in-memory",
            "detector_profile": settings.DETECTOR_PROFILE,
            "detection_workers": settings.DETECTION_WORKERS,
            "detection_queue": settings.DETECTION_QUEUE,
        },
        "options": {
            "photos": len(config.photos),
            "fanout_photo": config.fanout_photo.name,
            "clients": config.clients,
            "uploads": config.uploads,
            "websockets": config.websockets,
            "fanout_uploads": config.fanout_uploads,
            "broadcast_photo": config.broadcast_photo.name,
            "broadcast_photo_bytes": len(config.broadcast_photo.data),
            "broadcast_listeners": config.broadcast_listeners,
            "broadcast_uploads": config.broadcast_uploads,
            "broadcast_interval": config.broadcast_interval,
        },
        "throughput": uploads,
        "fanout": fanouts,
        "broadcast": broadcasts,
        "bare_broadcast": bare,
        "memory": snapshots,
    }
    return {**report, "targets": targets(report)}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def targets(report: dict) -> list[dict]:
    """Issue 11's targets for the broadcast and the uploads, each measured, its limit, and whether it holds
    (None: not measured in this run)."""
    broadcast = report["broadcast"]
    idle_answer = broadcast["idle"]["answer_ms"]["p50"] if broadcast["idle"] else None
    ours = {level["listeners"]: level for level in broadcast["levels"]}
    bare = {level["listeners"]: level for level in (report["bare_broadcast"] or {"levels": []})["levels"]}
    found = []

    def target(name: str, measured: float | None, limit: float | None, holds: bool | None = None) -> None:
        if holds is None and None not in (measured, limit):
            holds = measured <= limit
        found.append({"name": name, "measured": measured, "limit": limit, "holds": holds})

    if 1000 in ours and 1000 in bare:
        bare_p99 = bare[1000]["last_client_ms"]["p99"]
        limit = None if None in (idle_answer, bare_p99) else round(idle_answer + bare_p99 + BROADCAST_MARGIN_MS, 1)
        name = (
            f"1,000 listeners: p99 POST -> last client <= upload alone (p50 {idle_answer} ms) "
            f"+ bare broadcaster's p99 ({bare_p99} ms) + {BROADCAST_MARGIN_MS} ms"
        )
        target(name, ours[1000]["last_client_ms"]["p99"], limit)
    else:
        target("1,000 listeners: p99 POST -> last client (needs --broadcast 1000)", None, None)
    if 5000 in ours:
        crowd = ours[5000]
        everyone = crowd["delivered"] == crowd["expected"] > 0
        p99 = crowd["last_client_ms"]["p99"]
        name = (
            f"5,000 listeners, {report['server']['workers']} process(es): everyone receives "
            f"({crowd['delivered']}/{crowd['expected']}) and p99 POST -> last client <= {CROWD_P99_MS} ms"
        )
        target(name, p99, CROWD_P99_MS, everyone and p99 is not None and p99 <= CROWD_P99_MS)
    else:
        target("5,000 listeners: everyone receives, p99 <= 1 s (needs --broadcast 5000)", None, None)
    if 1000 in ours:
        limit = None if idle_answer is None else round(ANSWER_SLOWDOWN * idle_answer, 1)
        name = f"upload's answer p50 with 1,000 listeners <= {ANSWER_SLOWDOWN} x with none ({idle_answer} ms)"
        target(name, ours[1000]["answer_ms"]["p50"], limit)
    else:
        target("upload's answer with 1,000 listeners (needs --broadcast 1000)", None, None)
    crowded = next((level for level in report["throughput"] if level["clients"] == 16), None)
    name = f"16 concurrent uploaders: uploads/s >= {SLOTS_FLOOR_RATIO} x the slots-wide floor"
    if crowded:
        ratio = crowded["parallel_ratio"]
        target(name, ratio, SLOTS_FLOOR_RATIO, ratio >= SLOTS_FLOOR_RATIO)
    else:
        target(name + " (needs --clients 16)", None, None)
    return found


def format_report(report: dict) -> str:
    server = report["server"]
    lines = [
        f"Server: {server['workers']} process(es), {server['channel_layer']} channel layer, profile "
        f"{server['detector_profile']}, {server['detection_workers']} detections at once (+{server['detection_queue']} "
        f"waiting) per process; {report['machine']['cores']} cores, {report['machine']['processor']}; load average "
        f"{' / '.join(map(str, report['machine']['load_average']))} (1 / 5 / 15 min, at the end)",
        "",
        "Uploads (latency of the 201s; floor: the same image work without a server, just before and after each "
        "level, in a plain loop and on as many threads as the server's detection slots)",
        f"{'clients':>7} {'ok':>5} {'errors':<16} {'upl/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        f" {'srv CPU s':>9} {'cli CPU s':>9}   {'floor/s':>7} {'ratio':>6}   {'slots/s':>7} {'ratio':>6}",
    ]
    for level in report["throughput"]:
        errors = ",".join(f"{status}x{count}" for status, count in level["errors"].items()) or "-"
        ms = level["ms"]
        lines.append(
            f"{level['clients']:>7} {level['ok']:>5} {errors:<16} {level['per_second']:>7.2f} "
            + " ".join(f"{ms[key] if ms[key] is not None else '-':>7}" for key in ("p50", "p95", "p99"))
            + f" {level['server_cpu_s']:>9} {level['client_cpu_s']:>9}"
            + f"   {level['floor']['per_second']:>7.2f} {level['ratio']:>6.2f}"
            + f"   {level['parallel_floor']['per_second']:>7.2f} {level['parallel_ratio']:>6.2f}"
        )
    lines += [
        "",
        f"Fan-out ({report['options']['fanout_photo']}; ms from each POST to each websocket's message)",
        f"{'clients':>7} {'connect s':>9} {'delivered':>13} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
        f" {'POST ms':>7} {'msg B':>6} {'srv CPU s':>9} {'cli CPU s':>9} {'wall s':>6}",
    ]
    for level in report["fanout"]:
        ms = level["ms"]
        problems = [f"{count} {name}" for name, count in level["connect_failures"].items()]
        problems += [f"{level['dropped']} dropped"] if level["dropped"] else []
        problems += [f"upload {status}x{count}" for status, count in level["upload_errors"].items()]
        lines.append(
            f"{level['clients']:>7} {level['connect_seconds']:>9} {level['delivered']:>6}/{level['expected']:<6} "
            + " ".join(f"{ms[key] if ms[key] is not None else '-':>7}" for key in ("p50", "p99", "max"))
            + f" {level['response_ms_p50']:>7} {level['message_bytes']:>6} {level['server_cpu_s']:>9}"
            f" {level['client_cpu_s']:>9} {level['seconds']:>6}" + (f"   ({', '.join(problems)})" if problems else "")
        )
    options = report["options"]
    lines += [
        "",
        f"Broadcast ({options['broadcast_photo']}, {options['broadcast_photo_bytes']:,} B; per level one untimed "
        f"upload, then {options['broadcast_uploads']} sent {options['broadcast_interval']} s apart without waiting "
        "for deliveries; ms from each POST sent: to each delivery, to the last client per upload, to its answer; "
        "full: uploads that every client received)",
        f"{'server':<6} {'clients':>7} {'delivered':>13} {'full':>6} {'p50':>6} {'p99':>6} {'last p50':>8}"
        f" {'p99':>6} {'max':>6} {'answer p50':>10} {'p99':>6} {'msg B':>6} {'srv CPU s':>9} {'cli CPU s':>9}",
    ]
    for server_name, broadcasts in (("ours", report["broadcast"]), ("bare", report["bare_broadcast"])):
        for level in [broadcasts["idle"], *broadcasts["levels"]] if broadcasts and broadcasts["idle"] else []:
            lines.append(f"{server_name:<6} " + broadcast_row(level))
    lines += ["", "Targets (issue 11; this run)"]
    for target in report["targets"]:
        verdict = {True: "holds", False: "MISSED", None: "not measured"}[target["holds"]]
        measured = f": {target['measured']} (limit {target['limit']})" if target["measured"] is not None else ""
        lines.append(f"  {verdict:<12} {target['name']}{measured}")
    lines += ["", "Memory of the Daphne processes (MiB)", f"{'phase':<26} {'pid':>8} {'RSS':>7} {'peak':>7}"]
    for snapshot in report["memory"]:
        for process in snapshot["processes"]:
            lines.append(
                f"{snapshot['phase']:<26} {process['pid']:>8} {process['rss_mb']:>7.1f} {process['peak_rss_mb']:>7.1f}"
            )
    return "\n".join(lines)


def broadcast_row(level: dict) -> str:
    def ms(values: dict, key: str, width: int = 6) -> str:
        return f"{values[key] if values[key] is not None else '-':>{width}}"

    problems = [f"{count} {name}" for name, count in level["connect_failures"].items()]
    problems += [f"{level['dropped']} dropped"] if level["dropped"] else []
    problems += [f"upload {status}x{count}" for status, count in level["upload_errors"].items()]
    deliveries, last, answer = level["ms"], level["last_client_ms"], level["answer_ms"]
    return (
        f"{level['clients']:>7} {level['delivered']:>6}/{level['expected']:<6} "
        f"{level['uploads_everyone_received']:>3}/{level['uploads']:<2} {ms(deliveries, 'p50')} {ms(deliveries, 'p99')}"
        f" {ms(last, 'p50', 8)} {ms(last, 'p99')} {ms(last, 'max')} {ms(answer, 'p50', 10)} {ms(answer, 'p99')}"
        f" {level['message_bytes']:>6} {level['server_cpu_s']:>9} {level['client_cpu_s']:>9}"
        + (f"   ({', '.join(problems)})" if problems else "")
    )
