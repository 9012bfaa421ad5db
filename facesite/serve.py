"""Starts the server: Daphne on HOST:PORT (0.0.0.0:8282), in WORKERS processes (1).

With WORKERS above 1, this process opens the listening socket and starts that many Daphne
processes on it (the kernel spreads the connections over them), and passes SIGTERM on to them.
Several processes must share messages through Redis: without REDIS_URL it refuses to start.
PROXY_HEADERS=true takes the client address and scheme from X-Forwarded-* (behind a proxy).

Daphne gets these additions here:

- A graceful stop. Daphne on its own drops the requests in flight when it gets SIGTERM (a deploy,
  `docker stop`). Here SIGTERM and SIGINT stop accepting connections, let the HTTP requests in
  flight finish (their detections are stored and broadcast before they answer), then stop.
- A bound on what a websocket client may leave unread. Twisted buffers whatever the kernel cannot
  send yet, without limit: a client that never reads would grow the server's memory with every
  broadcast. Past WEBSOCKET_MAX_BUFFER_BYTES unread, the client is disconnected.
- Two savings for throughput: websocket frames are written at once when the socket can take them
  (Twisted waits for a later pass of the loop), and Twisted no longer parses upload bodies that
  Django parses anyway.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import time

from daphne import http_protocol
from daphne.cli import CommandLineInterface
from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from twisted.internet import reactor

from facesite.env import env_bool, env_int, env_str
from facesite.rlimits import raise_open_file_limit

logger = logging.getLogger("facesite.serve")

GRACE_SECONDS = 30  # docker stop waits 10 s by default; compose gives this service stop_grace_period 35 s
POLL_SECONDS = 0.1


def unsent_bytes(transport: object) -> int:
    """What a Twisted transport holds in memory because the peer has not taken it yet."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


class BoundedWebSocketProtocol(WebSocketProtocol):
    def serverSend(self, content: str | bytes, binary: bool = False) -> None:
        if unsent_bytes(self.transport) > settings.WEBSOCKET_MAX_BUFFER_BYTES:
            logger.warning("Dropping websocket client %s: it is not reading its messages", self.client_addr)
            self.dropConnection(abort=True)
            return
        super().serverSend(content, binary)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Twisted defers every write to a later pass of the loop (watch the socket for writable,
        # wake, send, stop watching): per message and client, that was most of a broadcast's
        # cost. With nothing waiting to go out on a plain TCP socket, send now; any rest goes the
        # usual way, after what we sent.
        transport = self.transport
        if not (sync or chopsize or self.send_queue or transport.TLS or unsent_bytes(transport)):
            written = transport.writeSomeData(data)
            if isinstance(written, int):  # otherwise the connection is lost: write() finds out
                data = data[written:]
            if not data:
                return
        super().sendData(data, sync, chopsize)


class UnparsedWebRequest(WebRequest):
    """Twisted parses every multipart body into request.args by default, in the event loop's
    thread (blocking websockets meanwhile), for nothing: Django parses the body it is given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


class GracefulServer(Server):
    def run(self) -> None:
        WebSocketFactory.protocol = BoundedWebSocketProtocol
        http_protocol.WebRequest = UnparsedWebRequest  # what Daphne's HTTPFactory builds
        self.ports = []
        self.stopping_since: float | None = None
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda number, frame: reactor.callFromThread(self.stop_gracefully))
        self.signal_handlers = False  # ours replace Twisted's, which stop at once
        super().run()

    def listen_success(self, port) -> None:
        self.ports.append(port)
        super().listen_success(port)

    def requests_in_flight(self) -> int:
        return sum(
            1
            for protocol, details in self.connections.items()
            if isinstance(protocol, WebRequest) and "disconnected" not in details
        )

    def stop_gracefully(self) -> None:
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        for port in self.ports:
            port.stopListening()
        logger.info("Stopping: no new connections; waiting for %d request(s) in flight", self.requests_in_flight())
        self.wait_for_requests()

    def wait_for_requests(self) -> None:
        waited = time.monotonic() - self.stopping_since
        if self.requests_in_flight() and waited < GRACE_SECONDS:
            reactor.callLater(POLL_SECONDS, self.wait_for_requests)
            return
        # A moment for the last broadcasts to reach the websockets before they close.
        reactor.callLater(0.5, self.stop)
        logger.info("Stopped after %.1f s", waited)


def daphne_arguments(listen: list[str]) -> list[str]:
    proxy = ["--proxy-headers"] if env_bool("PROXY_HEADERS") else []
    return [*listen, *proxy, "facesite.asgi:application"]


def run_daphne(arguments: list[str]) -> None:
    CommandLineInterface.server_class = GracefulServer
    CommandLineInterface().run(arguments)


def run_workers(count: int, host: str, port: int) -> int:
    """`count` Daphne processes accepting on one socket; stops them all when told to or when one dies."""
    listener = socket.create_server((host, port), backlog=2048)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "facesite.serve"],
            env={**os.environ, "WORKERS": "1", "LISTEN_FD": str(listener.fileno())},
            pass_fds=[listener.fileno()],
        )
        for _ in range(count)
    ]
    print(f"Started {count} server processes on {host}:{port}: {[child.pid for child in children]}", flush=True)

    def stop_children(signal_number: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop_children(signal.SIGTERM, None)  # one ended: end the rest, and let the supervisor restart us
    return max(child.wait() for child in children)


def main() -> int:
    raise_open_file_limit()  # before the workers start: they inherit it
    workers = env_int("WORKERS", 1, minimum=1)
    host, port = env_str("HOST", "0.0.0.0"), env_int("PORT", 8282, minimum=0)
    if "LISTEN_FD" in os.environ:
        run_daphne(daphne_arguments(["--fd", os.environ["LISTEN_FD"]]))
        return 0
    if workers <= 1:
        run_daphne(daphne_arguments(["--bind", host, "--port", str(port)]))
        return 0
    if not os.environ.get("REDIS_URL"):
        print(
            f"WORKERS={workers} needs REDIS_URL: processes share websocket messages only through Redis. "
            "Without it, each process's clients would hear only that process's uploads.",
            file=sys.stderr,
        )
        return 2
    return run_workers(workers, host, port)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ImproperlyConfigured as error:  # a bad WORKERS, PORT or PROXY_HEADERS: one line, as manage.py says it
        sys.exit(f"Configuration error: {error}")
