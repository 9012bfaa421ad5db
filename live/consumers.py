import asyncio
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable
from functools import partial
from typing import TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from access.throttling import scope_client_address, upload_throttle_wait
from access.websockets import Admission, accepted_subprotocol, open_streams, websocket_may_stream
from detection.consumers import scope_base_url
from detection.models import Detection
from detection.serializers import DetectionSerializer, with_base_url
from detection.services import detection_create
from live.errors import InvalidMessage, NoFrameYet, SnapshotInProgress, SnapshotThrottled
from live.streams import Frame, LatestFrame, StreamOptions, frame_detections, frame_faces, stream_options
from vision.errors import DetectionError, ProcessingFailed

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Options fit in a few hundred characters; frames come as binary messages.
MAX_TEXT_CHARS = 4096


class StreamConsumer(AsyncWebsocketConsumer):
    """A live stream: the client sends frames (binary JPEG or WebP) and options (text), and gets each
    detected frame's faces back. The latest frame wins: while one is detected, a newer one replaces
    the one waiting, and the answer says how many were dropped. Nothing is stored, except a frame
    the client asks to keep ({"type": "snapshot"}), which becomes an ordinary detection."""

    channel_layer_alias = None  # hears no broadcasts
    address: str | None = None  # holds a place in access.websockets.open_streams while set

    async def connect(self) -> None:
        address = scope_client_address(self.scope)
        # Reserved before any await, released on every path that does not end accepted.
        if not open_streams.take(address, cap=settings.STREAM_MAX_PER_CLIENT):
            await self.close()  # refuses the handshake (HTTP 403)
            return
        admission = Admission(admitted=False)
        try:
            admission = await websocket_may_stream(scope=self.scope)
        finally:  # refused, or the check failed (the database out of reach): the place goes back
            if not admission.admitted:
                open_streams.give_back(address)
        if not admission.admitted:
            await self.close()
            return
        self.address, self.identity = address, admission.identity
        self.options = stream_options({})
        self.latest = LatestFrame()
        self.last_frame: Frame | None = None  # what a snapshot keeps
        self.snapshot: asyncio.Task | None = None
        self.counts: Counter[str] = Counter()
        await self.accept(subprotocol=accepted_subprotocol(self.scope))
        await self.send_json(
            "stream.ready",
            options=self.options.as_json(),
            limits={
                "max_frame_bytes": settings.STREAM_MAX_FRAME_BYTES,
                "max_frame_pixels": settings.STREAM_MAX_FRAME_PIXELS,
            },
        )
        self.detecting = asyncio.create_task(self.detect_frames())

    async def disconnect(self, code: int) -> None:
        if self.address is None:
            return  # refused at connect
        self.detecting.cancel()
        if self.snapshot is not None:
            self.snapshot.cancel()  # the snapshot's thread finishes its detection; nobody hears of it
        open_streams.give_back(self.address)
        logger.info("stream ended", extra={"fields": {"client": self.address, "code": code, **self.counts}})
        self.address = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            self.counts["frames"] += 1
            self.last_frame = Frame(seq=self.counts["frames"], data=bytes_data, received_at=time.monotonic())
            self.latest.put(self.last_frame)
            return
        await self.reporting_failure(self.obey(text_data), doing="handling a stream's message")

    async def obey(self, text: str) -> None:
        message = parsed_message(text)
        if message.get("type") == "options":
            self.options = stream_options({name: value for name, value in message.items() if name != "type"})
            await self.send_json("options", options=self.options.as_json())
        elif message.get("type") == "snapshot":
            self.start_snapshot()
        else:
            raise InvalidMessage('Send frames as binary messages, and JSON objects of type "options" or "snapshot".')

    async def detect_frames(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame, dropped = await self.latest.take()
            self.counts["dropped"] += dropped
            detecting = loop.run_in_executor(
                frame_detections, partial(frame_faces, frame, self.options, tenant=f"stream:{self.address}")
            )
            found = await self.reporting_failure(
                detecting, doing="detecting a stream's frame", seq=frame.seq, dropped=dropped
            )
            if found is None:
                continue
            self.counts["detected"] += 1
            await self.send_json(
                "frame.faces",
                seq=frame.seq,
                width=found.width,
                height=found.height,
                faces=found.faces,
                detect_ms=found.detect_ms,
                waited_ms=found.waited_ms,
                dropped=dropped,
            )

    def start_snapshot(self) -> None:
        if self.last_frame is None:
            raise NoFrameYet("No frame has arrived yet: send one before asking for a snapshot.")
        if self.snapshot is not None and not self.snapshot.done():
            raise SnapshotInProgress("A snapshot of this stream is being stored; ask again once it is answered.")
        self.snapshot = asyncio.create_task(self.store_snapshot(self.last_frame, self.options))

    async def store_snapshot(self, frame: Frame, options: StreamOptions) -> None:
        storing = database_sync_to_async(snapshot_create, thread_sensitive=False)(
            frame=frame, options=options, identity=self.identity, address=self.address
        )
        detection = await self.reporting_failure(storing, doing="storing a stream's snapshot", seq=frame.seq)
        if detection is None:
            return
        self.counts["snapshots"] += 1
        await self.send_json(
            "snapshot.created", seq=frame.seq, detection=with_base_url(detection, scope_base_url(self.scope))
        )

    async def reporting_failure(self, work: Awaitable[T], *, doing: str, **about: int) -> T | None:
        """What `work` gives, or None once its failure is sent to the client with `about` (the frame's
        seq, and the frames dropped before it) and the stream goes on: a DetectionError as it is,
        anything else logged and sent as ProcessingFailed."""
        try:
            return await work
        except DetectionError as error:
            await self.send_error(error, **about)
        except Exception:
            logger.exception("%s failed", doing)
            await self.send_error(ProcessingFailed(), **about)
        finally:
            # A failed future's exception holds this frame in its traceback, and this frame the future:
            # a cycle that would keep the frame's bytes until the garbage collector's rare full pass.
            del work
        return None

    async def send_json(self, kind: str, **fields: object) -> None:
        await self.send(text_data=json.dumps({"type": kind, **fields}))

    async def send_error(self, error: DetectionError, *, seq: int | None = None, **about: int) -> None:
        self.counts["errors"] += 1
        body: dict = {"error": {"code": error.code, "message": error.message}, "seq": seq, **about}
        if error.retry_after:
            body["retry_after"] = error.retry_after
        await self.send_json("error", **body)


def parsed_message(text: str) -> dict:
    """A text message as the JSON object it must be, or InvalidMessage."""
    if len(text) > MAX_TEXT_CHARS:  # not worth parsing: no option takes that much
        raise InvalidMessage(f"A text message may have at most {MAX_TEXT_CHARS} characters.")
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidMessage("A text message must be JSON.") from None
    except RecursionError:  # a few thousand brackets
        raise InvalidMessage("A text message may not nest that deep: no option needs nesting.") from None
    if not isinstance(message, dict):
        raise InvalidMessage('A text message must be a JSON object, such as {"type": "snapshot"}.')
    return message


def snapshot_create(*, frame: Frame, options: StreamOptions, identity: str | None, address: str) -> dict:
    """A stream's frame stored as an ordinary detection (its source a stream), counted against the
    uploads' rate limit of the client, with the uploads' checks; its JSON as the API gives it."""
    if (wait := upload_throttle_wait(identity=identity, address=address)) is not None:
        error = SnapshotThrottled(f"Too many uploads and snapshots; try again in {math.ceil(wait)} s.")
        error.retry_after = math.ceil(wait)
        raise error
    detection = detection_create(
        image_bytes=frame.data,
        profile=options.profile,
        min_confidence=options.min_confidence,
        min_face_size=options.min_face_size,
        max_faces=options.max_faces,
        annotate_style=options.annotate,
        source=Detection.Source.STREAM,
    )
    return DetectionSerializer(detection).data
