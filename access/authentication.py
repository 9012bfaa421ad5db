from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from access.services import api_key_check, keys_configured
from access.throttling import auth_failures_wait, client_address


def key_in_headers(*, authorization: str, x_api_key: str | None) -> str | None:
    """The key of `Authorization: Bearer <key>`, else of `X-API-Key: <key>` (HTTP and websockets alike)."""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key or None


def presented_key(request: Request) -> str | None:
    return key_in_headers(
        authorization=request.headers.get("Authorization", ""), x_api_key=request.headers.get("X-API-Key")
    )


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`; request.auth becomes the key's identity.

    With no key configured the API is open and a presented key is ignored. An address that sent
    AUTH_FAILURE_LIMIT wrong keys gets 429 until its window ends, whatever key it sends."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, str] | None:
        key = presented_key(request)
        if not key or not keys_configured():
            return None
        address = client_address(request)
        if (wait := auth_failures_wait(address=address)) is not None:
            raise Throttled(wait, detail="Too many wrong API keys from this address.")
        identity = api_key_check(key=key, address=address)
        if identity is None:
            raise AuthenticationFailed("This API key is not valid (wrong, or revoked).")
        return AnonymousUser(), identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
