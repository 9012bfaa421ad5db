"""A live stream's work, apart from its socket: its options, the frame waiting to be detected (the
latest wins), and detecting one frame on this process's cores, in turn with uploads."""

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from django.conf import settings
from rest_framework.exceptions import ValidationError

from detection.errors_http import validation_message
from detection.pipeline import decode_limits, find_faces
from detection.serializers import DetectionParamsSerializer
from detection.services import detector_defaults, slots
from vision.errors import InvalidParameter
from vision.imaging import FRAME_FORMATS, FRAME_FORMATS_TEXT, decode_image

# A thread per stream's frame waiting for a turn, up to this many: the slots' turns (shared with
# uploads, the least used tenant first) decide who runs, not this pool's first-come queue. A waiting
# thread costs its stack and nothing else.
FRAME_THREADS = 64
# Their niceness, above the process's: when the cores are all busy, the kernel runs uploads'
# detections and the event loop (every request's and websocket's) first. Beside four streams
# (bench-stream) uploads' p95 was 2.2 times their idle one at the same niceness, 2.3 at 5 more, 1.1 at
# 10 and 0.8 at 19; at 19 any other busy process of the machine would all but stop the streams.
FRAME_THREAD_NICER_BY = 10


def lower_priority() -> None:
    """Make this thread (Linux schedules threads one by one) FRAME_THREAD_NICER_BY nicer (19 at most):
    raising one's niceness needs no privilege, lowering it would."""
    thread = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + FRAME_THREAD_NICER_BY))


frame_detections = ThreadPoolExecutor(
    max_workers=FRAME_THREADS, thread_name_prefix="stream", initializer=lower_priority
)


# Below this a frame's "faces" are noise, and costly: at 0, a grey 1080p frame kept 2,000 of them and
# took the accurate profile 0.7 s, at 0.05 none and 0.2 s (a photo may ask for 0; a live preview may not).
MIN_STREAM_CONFIDENCE = 0.05


@dataclass(frozen=True)
class StreamOptions:
    profile: str
    min_confidence: float
    min_face_size: int = 0
    max_faces: int | None = None
    annotate: str = "box"  # the style of the stream's snapshots

    def as_json(self) -> dict:
        return asdict(self)


def stream_options(fields: dict) -> StreamOptions:
    """A stream's options from an options message, validated as an upload's; what it leaves out (or
    sets to null) gets its default, the profile STREAM_PROFILE's."""
    params = DetectionParamsSerializer(data={name: value for name, value in fields.items() if value is not None})
    try:
        params.is_valid(raise_exception=True)
    except ValidationError as error:
        raise InvalidParameter(validation_message(error.detail)) from None
    options = params.validated_data
    if options.get("min_confidence", MIN_STREAM_CONFIDENCE) < MIN_STREAM_CONFIDENCE:
        raise InvalidParameter(f"min_confidence: a stream's must be at least {MIN_STREAM_CONFIDENCE}.")
    annotate = options["annotate_style"]
    _, default_min_confidence = detector_defaults(annotate_style=annotate)
    return StreamOptions(
        profile=options.get("profile", settings.STREAM_PROFILE),
        min_confidence=options.get("min_confidence", default_min_confidence),
        min_face_size=options["min_face_size"],
        max_faces=options.get("max_faces"),
        annotate=annotate,
    )


@dataclass(frozen=True)
class Frame:
    seq: int  # its place among the binary messages received on its socket, from 1
    data: bytes
    received_at: float  # time.monotonic()


class LatestFrame:
    """The frame waiting to be detected: a newer one replaces it, so a fast sender never builds a
    queue, and the frames replaced are counted until the next answer."""

    def __init__(self) -> None:
        self.waiting: Frame | None = None
        self.dropped = 0
        self._arrived = asyncio.Event()

    def put(self, frame: Frame) -> None:
        if self.waiting is not None:
            self.dropped += 1
        self.waiting = frame
        self._arrived.set()

    async def take(self) -> tuple[Frame, int]:
        """The latest frame, once there is one, and how many were dropped since the last take."""
        await self._arrived.wait()
        self._arrived.clear()
        frame, dropped = self.waiting, self.dropped
        self.waiting, self.dropped = None, 0
        return frame, dropped


@dataclass(frozen=True)
class FrameFaces:
    width: int
    height: int
    faces: list[dict]
    detect_ms: float  # decoding and detecting
    waited_ms: float  # from its arrival to the start of its detection


def frame_faces(frame: Frame, options: StreamOptions, *, tenant: str) -> FrameFaces:
    """Decode and detect one frame (JPEG or WebP, within the frame limits) in a detection slot's turn,
    charged to `tenant` (see detection.slots)."""
    with slots.turn(tenant):
        started = time.monotonic()
        image = decode_image(
            frame.data,
            limits=decode_limits(max_pixels=settings.STREAM_MAX_FRAME_PIXELS),
            formats=FRAME_FORMATS,
            formats_text=FRAME_FORMATS_TEXT,
        )
        faces = find_faces(
            image.bgr,
            min_confidence=options.min_confidence,
            profile=options.profile,
            min_face_size=options.min_face_size,
            max_faces=options.max_faces,
        )
        finished = time.monotonic()
    return FrameFaces(
        width=image.width,
        height=image.height,
        faces=[face.as_json() for face in faces],
        detect_ms=round((finished - started) * 1000, 2),
        waited_ms=round((started - frame.received_at) * 1000, 2),
    )
