"""Daphne with two additions: `python -m facesite.serve` takes Daphne's own command-line options.

- A graceful stop. Daphne on its own drops the requests in flight when it gets SIGTERM (a deploy,
  `docker stop`). Here SIGTERM and SIGINT stop accepting connections, let the HTTP requests in
  flight finish (their detections are stored and broadcast before they answer), then stop.
- A bound on what a websocket client may leave unread. Twisted buffers whatever the kernel cannot
  send yet, without limit: a client that never reads would grow the server's memory with every
  broadcast. Past WEBSOCKET_MAX_BUFFER_BYTES unread, the client is disconnected.
"""

import logging
import signal
import time

from daphne.cli import CommandLineInterface
from daphne.http_protocol import WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from twisted.internet import reactor

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


class GracefulServer(Server):
    def run(self) -> None:
        WebSocketFactory.protocol = BoundedWebSocketProtocol
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


if __name__ == "__main__":
    CommandLineInterface.server_class = GracefulServer
    CommandLineInterface.entrypoint()
