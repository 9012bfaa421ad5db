from django.urls import re_path

from detection.consumers import FacesConsumer

websocket_urlpatterns = [re_path(r"^faces/?$", FacesConsumer.as_asgi())]
