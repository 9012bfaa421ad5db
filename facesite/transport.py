"""Daphne's HTTP and websocket transport, bounded where clients' bytes arrive, before the application.

Daphne hands the application a request only once its whole body is in, and queues every websocket
frame for the application without limit. Our subclasses of Twisted's and Daphne's classes add:

- Connections per client address: past MAX_CONNECTIONS_PER_CLIENT (HTTP and websockets together,
  per process), a new connection is closed at once, before anything is read from it.
- Deadlines: a request's headers must arrive within HTTP_HEADERS_TIMEOUT seconds of its first byte,
  then its body within HTTP_BODY_TIMEOUT (a video's on /video: VIDEO_BODY_TIMEOUT); else 408.
- Body size: a declared Content-Length over the limit gets 413 before any of the body is read; a
  chunked body gets 413 as soon as it passes the limit. Twisted keeps a large body in a temporary
  file and Daphne then queues all of it for the application: never more than one body's limit.
- Large bodies (a video's hundreds of MB): Daphne would read the whole body from Twisted's file into
  the application's queue at once, in memory (400 MiB uploaded: the process grew by 430 MB and kept
  most of it). Past STREAMED_BODY_BYTES the application reads it from the file a chunk at a time
  instead, as it asks for it (StreamedBody).
- JSON errors: Twisted's own answer to framing it cannot read (an empty 400) and Daphne's HTML
  error pages carry the API's JSON error instead, and are logged like every request.
- Websockets: what a client sends to a listen-only endpoint (/faces) is dropped where it arrives,
  and a client past its budget of frames or bytes per window is disconnected (1008). A client that
  does not read its messages is disconnected past WEBSOCKET_MAX_BUFFER_BYTES unread, and messages
  are written at once when the socket can take them.
- Broadcasts: the application may send a text that many clients get through the scope extension
  SHARED_TEXT_EXTENSION; it is framed once per process and written as is to each client, without
  the per-message hops between the application, Daphne and autobahn.
"""

import asyncio
import io
import logging
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet.interfaces import IDelayedCall
from twisted.web.http import RESPONSES, HTTPChannel
from twisted.web.http import HTTPFactory as TwistedHTTPFactory

from detection.errors_http import error_json
from facesite.addresses import HeldPerAddress
from facesite.logs import log_request
from facesite.proxies import trusted_forwarded_address
from vision.errors import (
    DetectionError,
    ImageTooLarge,
    MalformedRequest,
    ProcessingFailed,
    RequestTimeout,
    VideoTooLarge,
)

logger = logging.getLogger("facesite.transport")

# Room for the multipart boundaries and headers around an image of MAX_UPLOAD_BYTES (a video of MAX_VIDEO_BYTES).
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Requests to these paths carry a video: MAX_VIDEO_BYTES, not MAX_UPLOAD_BYTES.
VIDEO_PATHS = (b"/video", b"/video/")
# A body larger than this reaches the application from its file, a chunk at a time (StreamedBody).
STREAMED_BODY_BYTES = 1024 * 1024
STREAMED_CHUNK_BYTES = 64 * 1024
# After answering early (413, 408, 400) we read and drop what the client still sends for this long
# before closing: closing with unread bytes resets the connection, and the client could lose the answer.
LINGER_SECONDS = 2.0
# The window of a websocket client's budget of frames and bytes.
BUDGET_WINDOW_SECONDS = 10.0


def is_video_path(path: bytes | None) -> bool:
    return bool(path) and path.split(b"?", 1)[0] in VIDEO_PATHS


def max_body_bytes(path: bytes | None = None) -> int:
    """The most a request's body may have: a photo's, or on /video a video's."""
    limit = settings.MAX_VIDEO_BYTES if is_video_path(path) else settings.MAX_UPLOAD_BYTES
    return limit + MULTIPART_OVERHEAD_BYTES


def body_too_large(size: int, path: bytes | None = None) -> ImageTooLarge | VideoTooLarge:
    if is_video_path(path):
        return VideoTooLarge(
            f"The request body is over {max_body_bytes(path)} bytes ({size} bytes declared or received); "
            f"the video limit is {settings.MAX_VIDEO_BYTES} bytes (MAX_VIDEO_BYTES)."
        )
    return ImageTooLarge(
        f"The request body is over {max_body_bytes()} bytes ({size} bytes declared or received); "
        f"the image limit is {settings.MAX_UPLOAD_BYTES} bytes."
    )


class ClientConnections:
    """Open connections per client address in this process, HTTP and websockets together, with a log
    line when an address reaches the cap and one when it drops back under it."""

    def __init__(self) -> None:
        self.open = HeldPerAddress()
        self.refused: Counter[str] = Counter()  # per address, since it reached the cap

    @staticmethod
    def cap() -> int:
        # Behind a proxy every connection comes from the proxy's address: the proxy caps clients.
        return 0 if settings.PROXY_HEADERS else settings.MAX_CONNECTIONS_PER_CLIENT

    def admit(self, host: str) -> bool:
        if self.open.take(host, cap=self.cap()):
            return True
        if not self.refused[host]:
            logger.warning("refusing connections", extra={"fields": {"client": host, "cap": self.cap()}})
        self.refused[host] += 1
        return False

    def release(self, host: str) -> None:
        self.open.give_back(host)
        if host in self.refused:
            logger.info(
                "accepting connections again", extra={"fields": {"client": host, "refused": self.refused[host]}}
            )
            del self.refused[host]


client_connections = ClientConnections()


class TransportChannel(HTTPChannel):
    """One HTTP connection: deadlines, the body limit and JSON answers for what Twisted refuses."""

    client_host = ""  # set by TransportHTTPFactory
    answered = False  # the transport answered this connection and only drops what follows
    deadline: IDelayedCall | None = None
    linger: IDelayedCall | None = None
    request_started = 0.0

    def dataReceived(self, data: bytes) -> None:
        if self.answered:
            return
        if self.deadline is None and not self._handlingRequest:  # the first bytes of a request
            self.request_started = time.monotonic()
            self.start_deadline(settings.HTTP_HEADERS_TIMEOUT, "headers")
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> bool | None:
        super().lineReceived(line)
        return self.answered or None  # True stops the parsing of the lines already received

    def lineLengthExceeded(self, line: bytes) -> None:
        self.answer(MalformedRequest("A line of the request's head is too long."))

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's one answer to framing it cannot read (request line, header, Content-Length, both
        # Content-Length and chunked, chunk size): an empty 400. Ours says so in the API's JSON.
        self.answer(
            MalformedRequest(
                "The request's HTTP framing is malformed (request line, headers, Content-Length or chunked encoding)."
            )
        )

    def allHeadersReceived(self) -> None:
        path = getattr(self, "_path", None)
        if self.length is not None and self.length > max_body_bytes(path):
            self.answer(body_too_large(self.length, path))  # before a byte of the body is read
            return
        super().allHeadersReceived()
        if self.length != 0:
            # A video's hundreds of MB take minutes on a phone's uplink: its body has a deadline of its own.
            seconds = settings.VIDEO_BODY_TIMEOUT if is_video_path(path) else settings.HTTP_BODY_TIMEOUT
            self.start_deadline(seconds, "body")

    def allContentReceived(self) -> None:
        if self.answered:  # a chunked body's end, parsed after it was refused
            return
        self.cancel_deadline()
        super().allContentReceived()

    def start_deadline(self, seconds: float, part: str) -> None:
        self.cancel_deadline()
        self.deadline = self.callLater(seconds, self.deadline_passed, seconds, part)

    def cancel_deadline(self) -> None:
        if self.deadline is not None and self.deadline.active():
            self.deadline.cancel()
        self.deadline = None

    def deadline_passed(self, seconds: float, part: str) -> None:
        self.deadline = None
        self.answer(RequestTimeout(f"The request's {part} did not arrive within {seconds:g} s."))

    def answer(self, error: DetectionError) -> None:
        """Answer this connection's request here, without the application, then close the connection."""
        if self.answered:
            return
        self.answered = True
        self.cancel_deadline()
        self.setTimeout(None)
        status, body = error_json(error)
        head = (
            f"HTTP/1.1 {status} {RESPONSES[status].decode()}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.loseWriteConnection()
        self.linger = self.callLater(LINGER_SECONDS, self.transport.abortConnection)
        request = self.requests[-1] if self.requests else None
        path = getattr(self, "_path", None)
        log_request(
            method=getattr(self, "_command", b"").decode("latin-1") or None,
            path=path.split(b"?", 1)[0].decode("latin-1") if path else None,
            status=status,
            ms=(time.monotonic() - self.request_started) * 1000,
            client=self.client_host,
            bytes_in=request.received_bytes if isinstance(request, TransportRequest) else 0,
        )

    def connectionLost(self, reason: object) -> None:
        self.cancel_deadline()
        if self.linger is not None and self.linger.active():
            self.linger.cancel()
        client_connections.release(self.client_host)
        super().connectionLost(reason)


class TransportRequest(WebRequest):
    received_bytes = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Twisted would parse every multipart body into request.args, in the event loop's thread
        # (blocking websockets meanwhile), for nothing: Django parses the body it is given.
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def handleContentChunk(self, data: bytes) -> None:
        if self.channel.answered:
            return
        self.received_bytes += len(data)
        path = getattr(self.channel, "_path", None)
        if self.received_bytes > max_body_bytes(path):
            self.channel.answer(body_too_large(self.received_bytes, path))  # a chunked body, as soon as it passes
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # The whole body is in. Django reads a body only as long as its Content-Length: a chunked
        # one (no length) would reach the views empty. Its length is known now.
        if self.requestHeaders.hasHeader(b"transfer-encoding"):
            self.requestHeaders.removeHeader(b"transfer-encoding")
            self.requestHeaders.setRawHeaders(b"content-length", [str(self.received_bytes).encode()])
        forwarded = self.requestHeaders.getRawHeaders(b"x-forwarded-for")
        if settings.PROXY_HEADERS and forwarded:
            # Daphne takes the leftmost address, which the client writes itself (a proxy appends the
            # address it saw): keep only the one our nearest trusted proxy (NUM_PROXIES, 1) appended.
            # Websockets too: Daphne hands the upgrade these headers.
            trusted = trusted_forwarded_address(b",".join(forwarded).decode("latin-1"), proxies=settings.NUM_PROXIES)
            self.requestHeaders.setRawHeaders(b"x-forwarded-for", [trusted.encode("latin-1")])
        super().requestReceived(command, path, version)

    def basic_error(self, status: int, status_text: bytes, body: str) -> None:
        # Daphne's own answers (invalid bytes in a header or the path; an application that failed to
        # start) are HTML pages: the API's JSON instead, logged like every request.
        error = MalformedRequest(f"{body}.") if status == 400 else ProcessingFailed()
        code, content = error_json(error)
        self.handle_reply(
            {"type": "http.response.start", "status": code, "headers": [(b"content-type", b"application/json")]}
        )
        self.handle_reply({"type": "http.response.body", "body": content})
        log_request(
            method=self.method.decode("latin-1"),
            path=self.path.decode("latin-1"),
            status=code,
            ms=self.duration() * 1000,
            client=self.client_addr[0] if self.client_addr else None,
            bytes_in=self.received_bytes,
        )

    streamed_body: BinaryIO | None = None  # the body's file, when the application reads it from there

    def process(self) -> None:
        # Daphne's process() reads self.content whole into the application's queue: a large body is
        # handed over as its file instead (facesite.serve.GracefulServer.create_application), and
        # Daphne reads an empty one.
        if self.content is not None and self.content.seek(0, os.SEEK_END) > STREAMED_BODY_BYTES:
            self.streamed_body, self.content = self.content, io.BytesIO()
        super().process()

    def in_application(self) -> bool:
        """The application has this request (its whole body came in); not one still arriving."""
        return self.application_queue is not None and not self.finished


class StreamedBody(asyncio.Queue):
    """The application's queue of a request with a large body: the body is read from its file a
    chunk at a time as the application asks for it (Django copies it to a file of its own), so that
    it never sits in memory whole. Daphne's own (empty) body message is dropped; the rest (a client's
    disconnection) follows the body."""

    def __init__(self, body: BinaryIO) -> None:
        super().__init__()
        body.seek(0)
        self.body: BinaryIO | None = body

    def put_nowait(self, message: dict) -> None:
        if message["type"] == "http.request" and self.body is not None:
            return
        super().put_nowait(message)

    async def get(self) -> dict:
        if self.body is None:
            return await super().get()
        await asyncio.sleep(0)  # other connections get the event loop between chunks
        chunk = self.body.read(STREAMED_CHUNK_BYTES)
        more_body = len(chunk) == STREAMED_CHUNK_BYTES
        if not more_body:
            self.body.close()
            self.body = None
        return {"type": "http.request", "body": chunk, "more_body": more_body}


class TransportHTTPFactory(HTTPFactory):
    protocol = TransportChannel

    def buildProtocol(self, addr: object) -> TransportChannel | None:
        if not client_connections.admit(addr.host):
            return None  # Twisted closes the socket at once: nothing read, nothing answered
        channel = TwistedHTTPFactory.buildProtocol(self, addr)
        channel.requestFactory = TransportRequest
        channel.client_host = addr.host
        return channel


@dataclass(frozen=True)
class InboundBudget:
    """What one websocket client may send per BUDGET_WINDOW_SECONDS before it is disconnected (1008),
    counted per frame (data and control) before the frame's payload is read, and the largest message
    it may send (a larger one closes the socket with 1009, before its payload is read)."""

    frames: int
    bytes: int
    forwarded: bool  # whether the application receives the client's messages at all
    max_message_bytes: int = 0  # 0: Daphne's own limit
    max_text_bytes: int = 0  # a text message's limit, when lower


STREAM_PATHS = ("/stream", "/stream/")
# /stream's text messages carry options of a few hundred bytes; only its binary frames may be large.
STREAM_MAX_TEXT_BYTES = 64 * 1024


def inbound_budget(path: str) -> InboundBudget:
    """The budget of the websocket endpoint at `path`. /faces only listens: its clients' messages are
    dropped and a small budget is left for pongs and a close. /stream takes a camera's frames."""
    if path in STREAM_PATHS:
        return InboundBudget(
            frames=settings.STREAM_BUDGET_FRAMES,
            bytes=settings.STREAM_BUDGET_BYTES,
            forwarded=True,
            max_message_bytes=settings.STREAM_MAX_FRAME_BYTES,
            max_text_bytes=STREAM_MAX_TEXT_BYTES,
        )
    return InboundBudget(
        frames=settings.WEBSOCKET_LISTENER_FRAMES, bytes=settings.WEBSOCKET_LISTENER_BYTES, forwarded=False
    )


def unsent_bytes(transport: object) -> int:
    """What a Twisted transport holds in memory because the peer has not taken it yet."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


# The scope extension of a websocket whose protocol is ours: {"send": callable(text)}, sending now.
SHARED_TEXT_EXTENSION = "facesite.shared_text"


@lru_cache(maxsize=64)
def text_frame(text: str) -> bytes:
    """`text` as one websocket frame from a server (RFC 6455 5.2: final, text, unmasked, no
    compression; what autobahn writes for Daphne's sendMessage, see tests). Built once per text:
    a broadcast's clients share one string, and its hash is kept with it."""
    payload = text.encode()
    if len(payload) < 126:
        head = struct.pack("!BB", 0x81, len(payload))
    elif len(payload) < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, len(payload))
    else:
        head = struct.pack("!BBQ", 0x81, 127, len(payload))
    return head + payload


class BoundedWebSocketProtocol(WebSocketProtocol):
    client_host = ""
    opened_at: float | None = None
    refused = False  # over its budget, or a message too big: closed, and nothing more is read
    message_bytes = 0  # of the data message being received, over its frames so far
    message_is_text = False

    def connectionMade(self) -> None:
        self.client_host = self.transport.getPeer().host
        super().connectionMade()

    def onConnect(self, request: object) -> object:
        self.budget = inbound_budget(request.path)
        if self.budget.max_message_bytes:
            # Ours is checked first, with a close frame; autobahn's own limit drops the connection.
            self.maxMessagePayloadSize = self.maxFramePayloadSize = 0
        self.window_started, self.window_frames, self.window_bytes = time.monotonic(), 0, 0
        return super().onConnect(request)

    def onOpen(self) -> None:
        self.opened_at = time.monotonic()
        logger.info("websocket connected", extra={"fields": self.log_fields()})
        super().onOpen()

    def onFrameBegin(self) -> None:
        if self.state == self.STATE_OPEN and not self.refused:
            self.count_frame(self.current_frame.length)
            self.check_message_size(self.current_frame)
        super().onFrameBegin()

    def count_frame(self, length: int) -> None:
        now = time.monotonic()
        if now - self.window_started > BUDGET_WINDOW_SECONDS:
            self.window_started, self.window_frames, self.window_bytes = now, 0, 0
        self.window_frames += 1
        self.window_bytes += length
        if self.window_frames > self.budget.frames or self.window_bytes > self.budget.bytes:
            fields = {**self.log_fields(), "frames": self.window_frames, "bytes": self.window_bytes}
            logger.warning("websocket client over its budget: disconnected", extra={"fields": fields})
            reason = b"Too many messages." if self.budget.forwarded else b"Too many messages: this endpoint only sends."
            self.refuse(code=1008, reason=reason)  # policy violation

    def check_message_size(self, frame: object) -> None:
        if self.refused or not self.budget.max_message_bytes or frame.opcode > 7:  # control frames: no message
            return
        # Opcode 0 continues a fragmented message; any other data frame starts one (1: text).
        if frame.opcode != 0:
            self.message_bytes, self.message_is_text = 0, frame.opcode == 1
        self.message_bytes += frame.length
        limit = self.budget.max_message_bytes
        if self.message_is_text and self.budget.max_text_bytes:
            limit = min(limit, self.budget.max_text_bytes)
        if self.message_bytes > limit:
            logger.warning("websocket message too big: disconnected", extra={"fields": self.log_fields()})
            kind = "text message" if self.message_is_text else "message"
            self.refuse(code=1009, reason=f"A {kind} may have at most {limit} bytes.".encode())

    def refuse(self, *, code: int, reason: bytes) -> None:
        """Close with `code` before reading the frame's payload, and read nothing more from the client."""
        self.refused = True
        # autobahn's sendClose takes only 1000 and application codes.
        self.sendCloseFrame(code=code, reasonUtf8=reason)
        # What it sent is dropped. Autobahn drops the connection if the client does not answer the
        # close within its close handshake timeout.
        self.data = b""
        self.transport.pauseProducing()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # Daphne queues every message for the application, without bound; a listen-only endpoint's are dropped.
        if self.budget.forwarded and not self.refused:
            super().onMessage(payload, isBinary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.opened_at is not None:
            seconds = round(time.monotonic() - self.opened_at, 1)
            logger.info("websocket disconnected", extra={"fields": {**self.log_fields(), "code": code, "s": seconds}})
        super().onClose(wasClean, code, reason)

    def connectionLost(self, reason: object) -> None:
        client_connections.release(self.client_host)
        super().connectionLost(reason)

    def log_fields(self) -> dict:
        client = getattr(self, "client_addr", None)
        return {"path": self.request.path, "client": client[0] if client else self.client_host}

    def scope_extensions(self) -> dict:
        return {SHARED_TEXT_EXTENSION: {"send": self.send_shared_text}}

    def send_shared_text(self, text: str) -> None:
        """Send a text many clients get (a broadcast): framed once per process, written to this client now."""
        # Closing or gone: Daphne, too, drops what the application sends to a client that went.
        if self.state == self.STATE_OPEN and self.reading():
            self.sendData(text_frame(text))

    def serverSend(self, content: str | bytes, binary: bool = False) -> None:
        # Closing (refused, or the client said goodbye): what the application still sends is dropped,
        # as autobahn would refuse it with an exception.
        if self.state == self.STATE_OPEN and self.reading():
            super().serverSend(content, binary)

    def reading(self) -> bool:
        """Whether the client takes its messages; one that leaves too many unread is disconnected."""
        if unsent_bytes(self.transport) <= settings.WEBSOCKET_MAX_BUFFER_BYTES:
            return True
        logger.warning("websocket client not reading: disconnected", extra={"fields": self.log_fields()})
        self.dropConnection(abort=True)
        return False

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
