"""The ways a /stream message can fail besides its frame's own (vision.errors), sent to the client as
{"type": "error", "error": {"code", "message"}} without closing the socket."""

from vision.errors import DetectionError


class InvalidMessage(DetectionError):
    """A text message that is not a JSON object with a known type."""

    code = "invalid_message"


class NoFrameYet(DetectionError):
    code = "no_frame"


class SnapshotInProgress(DetectionError):
    code = "snapshot_in_progress"


class SnapshotThrottled(DetectionError):
    """The uploads' rate limit, which snapshots count against."""

    code = "throttled"
