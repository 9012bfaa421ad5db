"""The real server, started by ./entrypoint.sh as users start it, for end-to-end and browser tests."""

import base64
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_REDIS_URL

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_SECONDS = 60
# How often a starting server or worker is asked whether it is ready: a refused connection costs a
# millisecond, and every test with a server of its own waits for it.
READY_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Server:
    base_url: str
    ws_url: str
    port: int
    media_root: Path
    log_path: Path
    process: subprocess.Popen
    env: dict[str, str]  # its configuration, for running manage.py against the same data

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    # The OS picks a port nobody uses; it is released for the server a moment later.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    # The server runs in a session of its own: signal the group, so a half-started
    # entrypoint (sh plus its migrate child) goes away too, not only the shell.
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def required_service(name: str, check: Callable[[], object]) -> None:
    """PostgreSQL and Redis are mandatory in CI; locally a missing one skips with the reason."""
    try:
        check()
    except Exception as error:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI and is not reachable: {error}", False)
        pytest.skip(f"no {name}: {error}")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one server, dropped afterwards."""
    import psycopg

    name = f"faces_e2e_{uuid.uuid4().hex[:12]}"
    required_service("PostgreSQL", lambda: psycopg.connect(TEST_POSTGRES_URL, connect_timeout=3).close())
    with psycopg.connect(TEST_POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield TEST_POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(TEST_POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def embedded_configuration(root: Path) -> Iterator[dict[str, str]]:
    # What `make run` uses: SQLite and the in-memory channel layer, one process.
    yield {"DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}"}


@contextmanager
def docker_configuration(root: Path) -> Iterator[dict[str, str]]:
    # What docker-compose.yml sets: PostgreSQL for the rows, Redis for the channel layer (compose's
    # queue mode, TASKS_BACKEND=rq with worker processes, is tests/test_queue_mode.py's).
    import redis

    required_service("Redis", lambda: redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping())
    with postgres_database() as database_url:
        yield {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL}


@contextmanager
def queue_configuration(root: Path) -> Iterator[dict[str, str]]:
    """docker-compose.yml's queue mode: the Docker configuration with TASKS_BACKEND=rq (workers come
    from running_worker), and Redis keys of its own for the queue and the channel layer, removed after."""
    import redis

    prefix = f"test-queue-{uuid.uuid4().hex[:12]}"
    with docker_configuration(root) as configuration:
        try:
            yield {
                **configuration,
                "TASKS_BACKEND": "rq",
                "RQ_KEY_PREFIX": f"{prefix}-rq",
                "CHANNEL_LAYER_PREFIX": prefix,
            }
        finally:
            connection = redis.Redis.from_url(TEST_REDIS_URL)
            for key in connection.scan_iter(f"{prefix}*"):
                connection.delete(key)
            connection.close()


@contextmanager
def running_server(root: Path, configuration: dict[str, str], *, port: int | None = None) -> Iterator[Server]:
    """./entrypoint.sh with its data under `root`, configured only through the environment."""
    port = port or free_port()
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PORT": str(port),
        "HOST": HOST,
        "MEDIA_ROOT": str(root / "media"),
        "STATIC_ROOT": str(root / "static"),
        "SECRET_KEY": "test-secret",
        # Python buffers a pipe's output: unbuffered, a failure shows the server's last words.
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.update(configuration)
    with launched_server(["./entrypoint.sh"], cwd=REPO_ROOT, env=env, media_root=root / "media") as server:
        yield server


@contextmanager
def launched_server(command: list[str], *, cwd: Path, env: dict[str, str], media_root: Path) -> Iterator[Server]:
    """`command` (./entrypoint.sh) started in `cwd` with exactly `env`, which sets HOST and PORT; its
    output goes to a log beside the media folder."""
    port = int(env["PORT"])
    log_path = media_root.parent / f"server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(
        base_url=f"http://{HOST}:{port}",
        ws_url=f"ws://{HOST}:{port}/faces",
        port=port,
        media_root=media_root,
        log_path=log_path,
        process=process,
        env=env,
    )
    try:
        wait_until_healthy(process, server)
        yield server
    finally:
        stop(process)


def wait_until_healthy(process: subprocess.Popen, server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The server exited with {process.returncode} while starting:\n{server.output()}", False)
        try:
            if requests.get(server.base_url + "/healthz", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            # Not listening yet (migrate and collectstatic run first), or, with WORKERS > 1, listening
            # on a socket whose processes are still starting.
            pass
        time.sleep(READY_POLL_SECONDS)
    pytest.fail(f"The server did not answer /healthz within {STARTUP_SECONDS} s:\n{server.output()}", False)


@dataclass(frozen=True)
class Worker:
    process: subprocess.Popen
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_worker(server: Server) -> Iterator[Worker]:
    """`./entrypoint.sh worker` (what `make worker` and compose's worker run) with the server's
    configuration, ready once it has registered with the queue in Redis."""
    import redis

    log_path = server.log_path.with_name(f"worker-{uuid.uuid4().hex[:8]}.log")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["./entrypoint.sh", "worker"],
            cwd=REPO_ROOT,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process=process, log_path=log_path)
    connection = redis.Redis.from_url(server.env["REDIS_URL"])

    def registered() -> bool:
        # RQ lists each queue's workers in a set (under RQ_KEY_PREFIX), each with its pid; entrypoint.sh execs.
        workers = connection.smembers(f"{server.env.get('RQ_KEY_PREFIX', 'rq')}:workers:default")
        return any(connection.hget(key, "pid") == str(process.pid).encode() for key in workers)

    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not registered():
            if process.poll() is not None:
                pytest.fail(f"The worker exited with {process.returncode} while starting:\n{worker.output()}", False)
            if time.monotonic() > deadline:
                pytest.fail(f"The worker did not start within {STARTUP_SECONDS} s:\n{worker.output()}", False)
            time.sleep(READY_POLL_SECONDS)
        yield worker
    finally:
        connection.close()
        stop(process)


def memory_kib(pid: int, field: str) -> int:
    """A process's memory from /proc: VmRSS (resident now) or VmHWM (the most it has been resident)."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def raw_websocket(
    port: int, *, path: str = "/faces", source: str = HOST, receive_buffer: int | None = None
) -> socket.socket:
    """A websocket handshake on a plain socket, for clients that misbehave below what a library allows."""
    sock = socket.socket()
    if receive_buffer:  # before connecting: the window it advertises is set then
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind((source, 0))
    sock.connect((HOST, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds; what it sent meanwhile is read and dropped."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read from a plain socket: status, headers (lower-case names) and body."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, "closed before the whole body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> object:
    """Polls `condition` until it returns something true, which it returns; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.05)
    return result


def pending_detections(server: Server) -> int:
    """Uploads the application is working on, in embedded mode with SQLite: an upload's row is
    stored pending before its detection runs and done after, in the request."""
    path = server.env["DATABASE_URL"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        return db.execute("SELECT count(*) FROM detection_detection WHERE status = 'pending'").fetchone()[0]
