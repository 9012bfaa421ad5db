import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware

from facesite.logs import log_request


class RequestLogMiddleware:
    """One structured line per request the application answers (facesite.logs.log_request)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        log_request(
            method=request.method,
            path=request.path,
            status=response.status_code,
            ms=(time.perf_counter() - started) * 1000,
            client=request.META.get("REMOTE_ADDR"),
            bytes_in=int(request.META.get("CONTENT_LENGTH") or 0),
        )
        return response


# Health probes (Docker's HEALTHCHECK, orchestrators) ask 127.0.0.1 or the container's address, a Host
# that ALLOWED_HOSTS rarely lists. Their answers hold no URLs, so they need no Host check.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


class CommonMiddlewareExceptProbes(CommonMiddleware):
    """Django's CommonMiddleware, which refuses a Host outside ALLOWED_HOSTS (400), except for the probes."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if request.path_info in PROBE_PATHS:
            return None
        return super().process_request(request)
