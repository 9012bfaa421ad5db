"""The ways a detection request can fail, one exception type per failure.

They carry a machine code and a sentence a person can act on; `errors_http` turns them
into HTTP responses, so nothing here knows about HTTP.
"""


class DetectionError(Exception):
    code = "detection_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


class InvalidParameter(DetectionError):
    code = "invalid_parameter"


class ServerBusy(DetectionError):
    code = "server_busy"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
