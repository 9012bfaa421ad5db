from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    """Per API key when one is sent, per client address otherwise; uploads and reads counted apart.
    Counts live in the default cache, which is Redis (shared by all processes) when REDIS_URL is set."""

    def get_rate(self) -> str | None:
        return None  # chosen per request in allow_request

    def allow_request(self, request: Request, view: object) -> bool:
        self.scope = "reads" if request.method in SAFE_METHODS else "uploads"
        self.rate = settings.THROTTLE_RATES[self.scope]
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: object) -> str:
        client = request.auth or f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{client}"
