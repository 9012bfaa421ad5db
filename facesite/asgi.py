"""ASGI entry point: HTTP goes to Django, websockets to Channels (served by Daphne)."""

import os

import django

from facesite.handlers import SyncMiddlewareASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, before importing code that touches models
django_asgi_app = SyncMiddlewareASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from facesite.origins import BrowserOriginValidator  # noqa: E402
from facesite.root_path import IgnoreClientRootPath  # noqa: E402
from facesite.routing import websocket_urlpatterns  # noqa: E402

application = IgnoreClientRootPath(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,  # bodies over the limit are refused before, in facesite/transport.py
            "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns)),
        }
    )
)
