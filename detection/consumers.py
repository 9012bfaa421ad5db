import json
from functools import lru_cache

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from access.throttling import scope_client_address
from access.websockets import accepted_subprotocol, open_sockets, websocket_may_listen
from detection.broadcast import FACES_GROUP
from detection.relay import GroupRelay
from detection.serializers import with_base_url
from facesite.transport import SHARED_TEXT_EXTENSION

# This process's membership of the faces group, shared by all its /faces clients.
faces_relay = GroupRelay(FACES_GROUP)


def scope_base_url(scope: dict) -> str:
    """The http(s) base URL the client used to reach us, so the URLs we send work for it."""
    if settings.PUBLIC_URL:
        return settings.PUBLIC_URL
    headers = dict(scope["headers"])
    host = headers.get(b"host", b"").decode("latin-1")
    if not host:
        server_host, server_port = scope.get("server") or ("localhost", 80)
        host = f"{server_host}:{server_port}"
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return f"{scheme}://{host}"


@lru_cache(maxsize=64)
def client_text(text: str, base_url: str) -> str:
    """A broadcast's text with its URLs made absolute for clients on `base_url`: encoded once per
    message and base URL, not once per client (a broadcast reaches thousands of them)."""
    return json.dumps(with_base_url(json.loads(text), base_url))


class FacesConsumer(AsyncWebsocketConsumer):
    """Relays every finished detection to this client: `detection.created` when one is done,
    `detection.failed` when one failed (queue mode), and the watched cameras' news: `camera.status` when
    one's state changes, `camera.faces` when faces appear on one that stores no snapshots. Clients only
    listen; what they send is ignored.

    The process, not each socket, is in the channel layer's group (see detection.relay).
    Daphne pings every client (every 20 s) and drops those that stop answering.
    """

    channel_layer_alias = None  # no layer channel per socket: faces_relay receives for all of them
    address: str | None = None  # holds a place in access.websockets.open_sockets while set

    async def connect(self) -> None:
        address = scope_client_address(self.scope)
        # Reserved before any await, released on every path that does not end accepted.
        if not open_sockets.take(address, cap=settings.WEBSOCKET_MAX_PER_CLIENT):
            await self.close()  # refuses the handshake (HTTP 403)
            return
        accepted = False
        try:
            accepted = await self.admit()
        finally:
            if accepted:
                self.address = address
            else:
                open_sockets.give_back(address)

    async def admit(self) -> bool:
        if not await websocket_may_listen(scope=self.scope):
            await self.close()
            return False
        self.base_url = scope_base_url(self.scope)
        # Before accepting: once the client is told it is in, it misses nothing. With the channel layer
        # out of reach the client is accepted all the same, and hears broadcasts once the relay is back.
        await faces_relay.join()
        await self.accept(subprotocol=accepted_subprotocol(self.scope))
        faces_relay.add(self)
        return True

    async def disconnect(self, code: int) -> None:
        if self.address is None:
            return  # refused at connect: never counted, never added
        faces_relay.discard(self)
        open_sockets.give_back(self.address)
        self.address = None

    async def relay(self, text: str) -> None:
        text = client_text(text, self.base_url)
        # Under our Daphne (facesite.serve) the text goes straight to the socket, framed once per
        # process; elsewhere (tests' communicators, another server) through Channels as usual.
        shared_text = self.scope.get("extensions", {}).get(SHARED_TEXT_EXTENSION)
        if shared_text is None:
            await self.send(text_data=text)
        else:
            shared_text["send"](text)
