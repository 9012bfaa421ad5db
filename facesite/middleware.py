import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("facesite.requests")


class RequestLogMiddleware:
    """One structured line per request: method, path, status, time, client. Never bodies, query
    strings or headers, so neither images nor API keys reach the logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        logger.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": request.META.get("REMOTE_ADDR"),
                    "bytes_in": int(request.META.get("CONTENT_LENGTH") or 0),
                }
            },
        )
        return response
