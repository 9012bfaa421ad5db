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
    """Relays every new detection to this client. Clients only listen; what they send is ignored."""

    async def connect(self) -> None:
        self.base_url = scope_base_url(self.scope)
        await self.channel_layer.group_add(FACES_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(FACES_GROUP, self.channel_name)

    async def detection_created(self, event: dict) -> None:
        await self.send_json({"type": "detection.created", **with_base_url(event["detection"], self.base_url)})
