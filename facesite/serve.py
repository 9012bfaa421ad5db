"""Starts the server: Daphne on HOST:PORT (0.0.0.0:8282), in WORKERS processes (1).

With WORKERS above 1, this process opens the listening socket and starts that many Daphne
processes on it (the kernel spreads the connections over them), restarts one that dies (at most
WORKER_RESTARTS_PER_MINUTE times a minute, then it stops the others and exits), and passes SIGTERM
on to them. Several processes must share messages through Redis: without REDIS_URL it refuses to
start. `python -m facesite.serve --prepare` is what entrypoint.sh runs before the server: it refuses
such a configuration before anything else, then migrates (not with MIGRATE=false), collects the static
files and creates the first admin user (from DJANGO_SUPERUSER_USERNAME and _PASSWORD, when set), all
in one process: starting Django is most of each step's time, so separate manage.py runs took twice as long.
PROXY_HEADERS=true takes the client address and scheme from X-Forwarded-* (behind a proxy).

Daphne gets a bounded transport (facesite/transport.py) and a graceful stop: Daphne on its own drops
the requests in flight when it gets SIGTERM (a deploy, `docker stop`). Here SIGTERM and SIGINT stop
accepting connections, let the requests the application is working on finish (their detections are
stored, and their broadcasts handed to the event loop, before they answer), give those broadcasts a
moment to go out, then stop; requests whose body is still arriving are not waited for. Daphne's
plain access log is off: the application and the transport log JSON lines.
"""

import asyncio
import gc
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from functools import partial

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings")

import django
from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from twisted.internet import reactor

from facesite.env import env_int, env_str
from facesite.rlimits import raise_open_file_limit
from facesite.sqlite import hold_write_ahead_log
from facesite.transport import BoundedWebSocketProtocol, StreamedBody, TransportHTTPFactory, TransportRequest

logger = logging.getLogger("facesite.serve")

GRACE_SECONDS = 30  # docker stop waits 10 s by default; compose gives this service stop_grace_period 35 s
POLL_SECONDS = 0.1
RESTART_WINDOW_SECONDS = 60


class GracefulServer(Server):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **{**kwargs, "action_logger": None})  # no plain access log beside the JSON lines

    def run(self) -> None:
        daphne_server.HTTPFactory = TransportHTTPFactory  # what Server.run builds
        WebSocketFactory.protocol = BoundedWebSocketProtocol
        self.ports = []
        self.stopping_since: float | None = None
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda number, frame: reactor.callFromThread(self.stop_gracefully))
        self.signal_handlers = False  # ours replace Twisted's, which stop at once
        from detection.broadcast import server_loop  # needs Django's apps, loaded with the application by now

        server_loop.loop = daphne_server.twisted_loop  # the loop Daphne's reactor runs
        self.write_ahead_log = hold_write_ahead_log(settings.DATABASES["default"])
        self.cameras = CamerasInServer() if settings.CAMERAS_IN_SERVER else None
        self.videos = resume_videos()
        tune_garbage_collector()
        super().run()

    def create_application(self, protocol: object, scope: dict) -> object:
        if isinstance(protocol, BoundedWebSocketProtocol):
            scope = {**scope, "extensions": {**scope.get("extensions", {}), **protocol.scope_extensions()}}
        body = getattr(protocol, "streamed_body", None)
        if body is None:
            return super().create_application(protocol, scope)
        # Daphne's Server.create_application, with a queue that reads the large body from its file.
        assert "application_instance" not in self.connections[protocol]
        input_queue = StreamedBody(body)
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return input_queue

    def listen_success(self, port) -> None:
        self.ports.append(port)
        super().listen_success(port)

    def requests_in_flight(self) -> int:
        return sum(
            1
            for protocol, details in self.connections.items()
            if isinstance(protocol, TransportRequest) and protocol.in_application() and "disconnected" not in details
        )

    def stop_gracefully(self) -> None:
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        for port in self.ports:
            port.stopListening()
        if self.cameras is not None:
            self.cameras.stopping.set()
        if self.videos:
            from videos.services import stopping  # the running video goes back to pending, to resume at the next start

            stopping.set()
        logger.info("Stopping: no new connections; waiting for %d request(s) in flight", self.requests_in_flight())
        self.wait_for_requests()

    def wait_for_requests(self) -> None:
        waited = time.monotonic() - self.stopping_since
        watching = self.cameras is not None and self.cameras.is_alive()  # marking its cameras idle
        if (self.requests_in_flight() or watching or videos_running()) and waited < GRACE_SECONDS:
            reactor.callLater(POLL_SECONDS, self.wait_for_requests)
            return
        # A moment for the last broadcasts to reach the websockets before they close.
        reactor.callLater(0.5, self.stop)
        logger.info("Stopped after %.1f s", waited)


class CamerasInServer(threading.Thread):
    """The camera watcher (live.watcher) in the server's own process (CAMERAS_IN_SERVER): its
    announcements go to this process's /faces clients through the in-memory channel layer."""

    def __init__(self) -> None:
        from live.watcher import CameraWatcher  # needs Django's apps, loaded with the application by now

        super().__init__(name="cameras", daemon=True)
        self.stopping = threading.Event()
        self.watcher = CameraWatcher()
        self.start()

    def run(self) -> None:
        self.watcher.run(self.stopping)


def resume_videos() -> bool:
    """Embedded mode: this process runs the videos on a thread of its own. Those a crash cut short end
    failed, and those pending start (videos.services.video_resume). False in queue mode (the workers')."""
    from videos.services import video_resume
    from videos.tasks import runs_in_server

    if not runs_in_server():
        return False
    try:
        video_resume()
    except Exception:  # a database out of reach: the server serves all the same
        logger.exception("resuming the videos left pending failed")
    return True


def videos_running() -> bool:
    from videos.services import running_here

    return running_here()


# Allocations between the collector's young passes (Python's default: 700). See tune_garbage_collector.
YOUNG_COLLECTION_THRESHOLD = 20_000


def tune_garbage_collector() -> None:
    """Fewer and shorter pauses of the whole process for garbage collection.

    A full collection walks every object the collector tracks and stops everything meanwhile: with
    1,000 /faces clients, 100-200 ms, every few seconds under uploads (`make bench-load`), and the
    uploads and broadcasts it caught set the tail. What the server loaded to start (Django, its
    apps, the libraries: about half the objects with 1,000 clients) lives as long as the process:
    frozen, it is never walked again. A young pass every 20,000 allocations instead of 700 lets a
    request's short-lived objects die before they are promoted, and full collections, which wait for
    promotions, come far less often: in bench-load's 1,000-listener level, none in 40 uploads where
    there were three."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def daphne_arguments(listen: list[str]) -> list[str]:
    proxy = ["--proxy-headers"] if settings.PROXY_HEADERS else []
    pings = [
        "--ping-interval",
        str(settings.WEBSOCKET_PING_INTERVAL),
        "--ping-timeout",
        str(settings.WEBSOCKET_PING_TIMEOUT),
    ]
    return [*listen, *proxy, *pings, "facesite.asgi:application"]


def run_daphne(arguments: list[str]) -> None:
    CommandLineInterface.server_class = GracefulServer
    CommandLineInterface().run(arguments)


def run_workers(count: int, host: str, port: int) -> int:
    """`count` Daphne processes accepting on one socket. One that dies is restarted while the others
    serve; past WORKER_RESTARTS_PER_MINUTE restarts in a minute, all stop and this returns 1."""
    listener = socket.create_server((host, port), backlog=2048)

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "facesite.serve"],
            env={**os.environ, "WORKERS": "1", "LISTEN_FD": str(listener.fileno())},
            pass_fds=[listener.fileno()],
        )

    children = [start() for _ in range(count)]
    logger.info("Started %d server processes on %s:%d: %s", count, host, port, [child.pid for child in children])
    stopping = False
    restarts: deque[float] = deque()

    def stop_children(signal_number: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    while not stopping:
        time.sleep(POLL_SECONDS)
        for index, child in enumerate(children):
            if stopping or child.poll() is None:
                continue
            now = time.monotonic()
            while restarts and now - restarts[0] > RESTART_WINDOW_SECONDS:
                restarts.popleft()
            if len(restarts) >= settings.WORKER_RESTARTS_PER_MINUTE:
                logger.critical(
                    "Server process %d exited with %d after %d restarts in a minute: giving up, stopping all",
                    child.pid,
                    child.returncode,
                    len(restarts),
                )
                stop_children(signal.SIGTERM, None)
                for other in children:
                    other.wait()
                return 1
            restarts.append(now)
            children[index] = start()
            logger.error(
                "Server process %d exited with %d; started %d in its place",
                child.pid,
                child.returncode,
                children[index].pid,
            )
    codes = [child.wait() for child in children]
    return 0 if all(code == 0 for code in codes) else 1


def configuration_error(workers: int) -> str | None:
    if workers > 1 and not settings.REDIS_URL:
        return (
            f"WORKERS={workers} needs REDIS_URL: processes share websocket messages only through Redis. "
            "Without it, each process's clients would hear only that process's uploads."
        )
    return None


def prepare() -> None:
    django.setup()
    # Exactly "true", as entrypoint.sh has always read it: compose sets "false" where another service migrates.
    if os.environ.get("MIGRATE", "true") == "true":
        call_command("migrate", interactive=False)
    call_command("collectstatic", interactive=False, verbosity=0)
    if os.environ.get("DJANGO_SUPERUSER_USERNAME") and os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
        call_command("ensure_superuser")


def main(arguments: list[str]) -> int:
    workers = env_int("WORKERS", 1, minimum=1)
    if error := configuration_error(workers):
        print(error, file=sys.stderr)
        return 2
    if arguments == ["--prepare"]:
        prepare()
        return 0
    raise_open_file_limit()  # before the workers start: they inherit it
    host, port = env_str("HOST", "0.0.0.0"), env_int("PORT", 8282, minimum=0)
    if "LISTEN_FD" in os.environ:
        run_daphne(daphne_arguments(["--fd", os.environ["LISTEN_FD"]]))
        return 0
    if workers <= 1:
        run_daphne(daphne_arguments(["--bind", host, "--port", str(port)]))
        return 0
    logging.config.dictConfig(settings.LOGGING)  # this process runs no Django app: its lines in the same format
    return run_workers(workers, host, port)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ImproperlyConfigured as error:  # a bad WORKERS, PORT or PROXY_HEADERS: one line, as manage.py says it
        sys.exit(f"Configuration error: {error}")
    except CommandError as error:  # a step of --prepare refused: one line, as manage.py says it
        sys.exit(f"CommandError: {error}")
