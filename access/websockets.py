"""Who may open a websocket: /faces (listening) follows the rule of HTTP reads, /stream (sending
frames) the rule of uploads; each with a cap per client address."""

from importlib import import_module
from typing import NamedTuple

from channels.auth import get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie

from access.authentication import key_in_headers
from access.services import api_key_check, keys_configured
from access.throttling import auth_failures_wait, scope_client_address
from facesite.addresses import HeldPerAddress

# Browsers cannot set headers on a websocket: a page passes its key as a subprotocol,
# new WebSocket(url, ["faces", "api-key." + key]), and the server answers with "faces".
FACES_SUBPROTOCOL = "faces"
KEY_SUBPROTOCOL_PREFIX = "api-key."


# Sockets open (or being opened) on /faces per client address, at most WEBSOCKET_MAX_PER_CLIENT each. A
# place is taken before the handshake awaits anything, so handshakes that arrive together cannot all
# pass the check before any of them is counted.
open_sockets = HeldPerAddress()
# Live streams open on /stream per client address, at most STREAM_MAX_PER_CLIENT each (taken the same way).
open_streams = HeldPerAddress()


class Admission(NamedTuple):
    admitted: bool
    identity: str | None = None  # the API key's identity (access.services.api_key_check), when one was sent


def presented_websocket_key(scope: dict) -> str | None:
    for subprotocol in scope.get("subprotocols", []):
        if subprotocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            return subprotocol.removeprefix(KEY_SUBPROTOCOL_PREFIX)
    headers = dict(scope["headers"])
    return key_in_headers(
        authorization=headers.get(b"authorization", b"").decode("latin-1"),
        x_api_key=headers.get(b"x-api-key", b"").decode("latin-1"),
    )


@database_sync_to_async
def _key_admission(scope: dict) -> Admission:
    """Open while no API key exists; then only with a valid key (subprotocol or header)."""
    if not keys_configured():
        return Admission(admitted=True)
    key = presented_websocket_key(scope)
    address = scope_client_address(scope)
    if not key or auth_failures_wait(address=address) is not None:
        return Admission(admitted=False)
    identity = api_key_check(key=key, address=address)
    return Admission(admitted=identity is not None, identity=identity)


def with_session(scope: dict) -> dict:
    """The scope with the session its cookie names (loaded only when read), as channels.auth expects.
    Done here rather than by Channels' session middleware, which would cost every handshake a thread hop."""
    cookies = parse_cookie(dict(scope["headers"]).get(b"cookie", b"").decode("latin-1"))
    session_store = import_module(settings.SESSION_ENGINE).SessionStore
    return {**scope, "session": session_store(cookies.get(settings.SESSION_COOKIE_NAME))}


async def websocket_may_listen(*, scope: dict) -> bool:
    """Open to all unless API_KEYS_REQUIRED_FOR_READ; then a valid API key (subprotocol or header)
    or a staff session (the page at /, whose cookie the browser sends) is needed, as for GET /image."""
    if not settings.API_KEYS_REQUIRED_FOR_READ:
        return True
    if (await get_user(with_session(scope))).is_staff:
        return True
    return (await _key_admission(scope)).admitted


async def websocket_may_stream(*, scope: dict) -> Admission:
    """The rule of uploads (access.permissions.KeyRequiredWhenConfigured): open while no API key
    exists; then a valid key, or a staff session (the page at /)."""
    admission = await _key_admission(scope)
    if not admission.admitted and (await get_user(with_session(scope))).is_staff:
        return Admission(admitted=True)
    return admission


def accepted_subprotocol(scope: dict) -> str | None:
    """A browser that offered subprotocols fails the handshake unless the answer names one of them."""
    return FACES_SUBPROTOCOL if FACES_SUBPROTOCOL in scope.get("subprotocols", []) else None
