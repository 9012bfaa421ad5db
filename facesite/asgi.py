"""ASGI entry point: HTTP goes to Django, websockets to Channels (served by Daphne)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings")
django_asgi_app = get_asgi_application()  # before importing code that touches models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from detection.routing import websocket_urlpatterns  # noqa: E402
from facesite.origins import BrowserOriginValidator  # noqa: E402
from facesite.root_path import IgnoreClientRootPath  # noqa: E402

application = IgnoreClientRootPath(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,  # bodies over the limit are refused before, in facesite/transport.py
            "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns)),
        }
    )
)
