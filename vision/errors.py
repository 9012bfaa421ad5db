"""The ways a detection request can fail, one exception type per failure.

They carry a machine code and a sentence a person can act on; `errors_http` turns them
into HTTP responses, so nothing here knows about HTTP.
"""

from typing import ClassVar


class DetectionError(Exception):
    code = "detection_error"
    retry_after: int | None = None  # seconds a client should wait before trying again, for passing failures
    by_code: ClassVar[dict[str, type["DetectionError"]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        DetectionError.by_code[cls.code] = cls

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @staticmethod
    def recorded(code: str, message: str) -> "DetectionError":
        """A failure stored as code and message (on a detection), as the exception it was."""
        error_class = DetectionError.by_code.get(code)
        return error_class(message) if error_class else ProcessingFailed()


class ImageMissing(DetectionError):
    code = "image_missing"


class ImageEmpty(DetectionError):
    code = "image_empty"


class UnsupportedImageFormat(DetectionError):
    code = "unsupported_image_format"


class CorruptImage(DetectionError):
    code = "corrupt_image"


class ImageTooLarge(DetectionError):
    code = "image_too_large"


class ImageTooCostlyToDecode(DetectionError):
    """Small on the wire, expensive to decode: far more pixels than the bytes justify, or a
    JPEG with more scans (each a pass over the whole image) than any encoder writes."""

    code = "image_too_costly_to_decode"


class InvalidParameter(DetectionError):
    code = "invalid_parameter"


class MalformedRequest(DetectionError):
    """HTTP framing the server cannot read: a bad request line, header, Content-Length or chunk."""

    code = "bad_request"


class RequestTimeout(DetectionError):
    """A client too slow sending its request's headers or body (HTTP_HEADERS_TIMEOUT, HTTP_BODY_TIMEOUT)."""

    code = "request_timeout"


class ServerBusy(DetectionError):
    code = "server_busy"
    retry_after = 2


class VideoQueueFull(DetectionError):
    """As many videos wait or run as the server takes (MAX_PENDING_VIDEOS): each costs minutes of CPU."""

    code = "video_queue_full"
    retry_after = 60


class QueueUnavailable(DetectionError):
    code = "queue_unavailable"
    retry_after = 10


class WorkerLost(DetectionError):
    """Queue mode: the worker running the detection died (killed, out of memory) before it finished."""

    code = "worker_lost"

    def __init__(
        self, message: str = "The worker detecting this photo stopped before it finished; upload it again."
    ) -> None:
        super().__init__(message)


class ProcessingFailed(DetectionError):
    """Anything unexpected while detecting: a bug or a broken dependency, logged where it happened."""

    code = "server_error"

    def __init__(self, message: str = "The server failed to process this image; the failure has been logged.") -> None:
        super().__init__(message)


class VideoUnavailable(DetectionError):
    """A video or camera stream that cannot be read: refused, not found, not video, or cut off."""

    code = "video_unavailable"


class VideoStalled(DetectionError):
    """A video or camera stream that stopped answering: nothing within the open or read timeout."""

    code = "video_stalled"


class VideoMissing(DetectionError):
    code = "video_missing"


class VideoEmpty(DetectionError):
    code = "video_empty"


class UnsupportedVideoFormat(DetectionError):
    code = "unsupported_video_format"


class CorruptVideo(DetectionError):
    """A video in a known container that cannot be read through: truncated, undecodable, no frames."""

    code = "corrupt_video"


class VideoTooLarge(DetectionError):
    """Over a limit in bytes, duration or resolution; the message names the limit."""

    code = "video_too_large"


class VideoCancelled(DetectionError):
    """Internal: the video's job was cancelled (or the video deleted) while it ran; never an HTTP answer."""

    code = "video_cancelled"

    def __init__(self, message: str = "The video's processing was cancelled.") -> None:
        super().__init__(message)
