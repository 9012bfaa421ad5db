"""The real server, started by ./entrypoint.sh as users start it, for end-to-end and browser tests."""

import os
import signal
import socket
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
    log_path = root / f"server-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["./entrypoint.sh"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(
        base_url=f"http://{HOST}:{port}",
        ws_url=f"ws://{HOST}:{port}/faces",
        port=port,
        media_root=root / "media",
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
            pass  # not listening yet (migrate and collectstatic run first), or not answering yet
        time.sleep(0.2)
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
            time.sleep(0.2)
        yield worker
    finally:
        connection.close()
        stop(process)
