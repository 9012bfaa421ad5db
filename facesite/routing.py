from channels.security.websocket import WebsocketDenier
from django.urls import re_path

from detection.consumers import FacesConsumer
from live.consumers import StreamConsumer

websocket_urlpatterns = [
    re_path(r"^faces/?$", FacesConsumer.as_asgi()),
    re_path(r"^stream/?$", StreamConsumer.as_asgi()),
    # Any other path: a refused handshake (403), not the router's "No route found" error and a 500.
    re_path(r"", WebsocketDenier.as_asgi()),
]
