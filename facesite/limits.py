"""ASGI middleware that refuses oversized request bodies before Django reads them."""

import json

from django.conf import settings

from detection.errors import ImageTooLarge
from detection.errors_http import error_body

# Room for the multipart boundaries and headers around an image of MAX_UPLOAD_BYTES.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def max_body_bytes() -> int:
    return settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


class RequestBodyLimit:
    """413 at once when Content-Length is over the limit; a streamed (chunked) body is cut off
    as soon as it passes the limit, and Django sees a client that went away."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = max_body_bytes()
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._too_large(send, int(declared), limit)

        received = 0
        cut_off = False

        async def limited_receive() -> dict:
            nonlocal received, cut_off
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    return {"type": "http.disconnect"}  # Django stops reading and sends nothing
            return message

        await self.app(scope, limited_receive, send)
        if cut_off:
            await self._too_large(send, received, limit)

    @staticmethod
    async def _too_large(send, size: int, limit: int) -> None:
        message = (
            f"The request body is over {limit} bytes ({size} bytes so far); "
            f"the image limit is {settings.MAX_UPLOAD_BYTES} bytes."
        )
        body = json.dumps(error_body(ImageTooLarge.code, message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
