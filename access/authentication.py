from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from access.services import api_key_check


def presented_key(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key")


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`; request.auth becomes the key's identity."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, str] | None:
        key = presented_key(request)
        if not key:
            return None
        identity = api_key_check(key=key)
        if identity is None:
            raise AuthenticationFailed("This API key is not valid (wrong, or revoked).")
        return AnonymousUser(), identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
