"""How often a client may use the API, and how often it may present a wrong API key.

Counts live in the default cache: Redis (shared by all processes) when REDIS_URL is set. When that
Redis is out of reach the limits fail open: requests go through uncounted until it is back, and the
outage is logged once when it starts and once when it ends, with the number of checks it skipped.
"""

import logging
import math
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from facesite.proxies import trusted_forwarded_address

logger = logging.getLogger(__name__)
T = TypeVar("T")

# While the cache is out of reach, try it again after this long: a Redis that does not answer costs
# one request a timeout every few seconds, not every request.
CACHE_RETRY_SECONDS = 5.0


class CacheOutage:
    """Whether the cache answered lately, and how many checks (rate limits, wrong keys) it skipped."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.retry_at = 0.0
        self.uncounted = 0

    def counted(self, count: Callable[[], T], *, uncounted: T) -> T:
        """`count()` against the cache, or `uncounted` when the cache is (or just went) out of reach."""
        if self.since is not None and time.monotonic() < self.retry_at:
            self.uncounted += 1
            return uncounted
        try:
            result = count()
        except RedisError as error:
            self.failed(error)
            return uncounted
        self.ended()
        return result

    def failed(self, error: RedisError) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            logger.error("rate limits are off: the cache is out of reach (%s); requests go through uncounted", error)
        self.retry_at = now + CACHE_RETRY_SECONDS
        self.uncounted += 1

    def ended(self) -> None:
        if self.since is None:
            return
        logger.warning(
            "rate limits are back on after %.0f s without the cache; %d check(s) went uncounted",
            time.monotonic() - self.since,
            self.uncounted,
        )
        self.since, self.uncounted = None, 0


cache_outage = CacheOutage()


def forwarded_client(*, remote_addr: str, forwarded_for: str | None) -> str:
    """The client's address: the peer's, or behind NUM_PROXIES trusted proxies the address the farthest
    of them put in X-Forwarded-For (anything before it is the client's own word, and ignored)."""
    proxies = settings.NUM_PROXIES
    if not proxies or not forwarded_for:
        return remote_addr
    return trusted_forwarded_address(forwarded_for, proxies=proxies)


def client_address(request: HttpRequest | Request) -> str:
    """The address every limit counts against (also django-axes' AXES_CLIENT_IP_CALLABLE)."""
    return forwarded_client(
        remote_addr=request.META.get("REMOTE_ADDR", "unknown"), forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR")
    )


def scope_client_address(scope: dict) -> str:
    """client_address for an ASGI scope (a websocket handshake)."""
    forwarded_for = dict(scope["headers"]).get(b"x-forwarded-for")
    return forwarded_client(
        remote_addr=(scope.get("client") or ("unknown", 0))[0],
        forwarded_for=forwarded_for.decode("latin-1") if forwarded_for else None,
    )


class ClientRateThrottle(SimpleRateThrottle):
    """Per API key when one is sent, per client address otherwise; uploads and reads counted apart."""

    def get_rate(self) -> str | None:
        return None  # chosen per request in allow_request

    def allow_request(self, request: Request, view: object) -> bool:
        self.scope = "reads" if request.method in SAFE_METHODS else "uploads"
        self.rate = settings.THROTTLE_RATES[self.scope]
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return cache_outage.counted(lambda: SimpleRateThrottle.allow_request(self, request, view), uncounted=True)

    def get_cache_key(self, request: Request, view: object) -> str:
        client = request.auth or f"ip:{client_address(request)}"
        return f"throttle:{self.scope}:{client}"


def upload_throttle_wait(*, identity: str | None, address: str) -> float | None:
    """The uploads' rate limit for an upload made outside an HTTP request (a stream's snapshot),
    counted with the same key as its HTTP uploads: None when allowed, else the seconds to wait."""
    throttle = ClientRateThrottle()
    request = SimpleNamespace(method="POST", auth=identity, META={"REMOTE_ADDR": address})
    return None if throttle.allow_request(request, view=None) else throttle.wait()


def _failures_key(address: str) -> str:
    return f"auth-failures:{address}"


def auth_failures_wait(*, address: str) -> int | None:
    """Seconds until `address` may present API keys again, or None while it has had fewer than
    AUTH_FAILURE_LIMIT wrong ones in the window (AUTH_FAILURE_WINDOW_SECONDS from its first); 0: no limit."""
    if not settings.AUTH_FAILURE_LIMIT:
        return None

    def wait() -> int | None:
        key = _failures_key(address)
        found = cache.get_many([key, f"{key}:since"])
        if found.get(key, 0) < settings.AUTH_FAILURE_LIMIT:
            return None
        ends = found.get(f"{key}:since", time.time()) + settings.AUTH_FAILURE_WINDOW_SECONDS
        return max(1, math.ceil(ends - time.time()))

    return cache_outage.counted(wait, uncounted=None)


def auth_failure_record(*, address: str) -> None:
    """Count one wrong API key from `address`; the window starts with its first failure."""

    def record() -> None:
        key, window = _failures_key(address), settings.AUTH_FAILURE_WINDOW_SECONDS
        cache.add(f"{key}:since", time.time(), timeout=window)
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # the window ended between add and incr
            cache.set(key, 1, timeout=window)

    cache_outage.counted(record, uncounted=None)
