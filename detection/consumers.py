from collections import Counter

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from detection.broadcast import FACES_GROUP
from detection.serializers import with_base_url


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


class FacesConsumer(AsyncJsonWebsocketConsumer):
    """Relays every finished detection to this client: `detection.created` when one is done,
    `detection.failed` when one failed (queue mode). Clients only listen; what they send is ignored.

    Daphne pings every client (every 20 s) and drops those that stop answering.
    """

    # Open sockets per client address in this process: one address cannot take every socket.
    open_per_client: Counter[str] = Counter()
    client: str | None = None  # set once the socket is accepted and counted

    async def connect(self) -> None:
        client = (self.scope.get("client") or ("unknown", 0))[0]
        if self.open_per_client[client] >= settings.WEBSOCKET_MAX_PER_CLIENT:
            await self.close()  # refuses the handshake (HTTP 403)
            return
        self.client = client
        self.open_per_client[client] += 1
        self.base_url = scope_base_url(self.scope)
        await self.channel_layer.group_add(FACES_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.client is None:
            return  # refused at connect: never counted, never joined
        self.open_per_client[self.client] -= 1
        if not self.open_per_client[self.client]:
            del self.open_per_client[self.client]
        await self.channel_layer.group_discard(FACES_GROUP, self.channel_name)

    async def detection_created(self, event: dict) -> None:
        await self.send_json({"type": event["type"], **with_base_url(event["detection"], self.base_url)})

    detection_failed = detection_created  # the same relay; the event's type says which
