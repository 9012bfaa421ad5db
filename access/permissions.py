from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from access.services import keys_configured


class KeyRequiredWhenConfigured(BasePermission):
    """Open while no API key exists. Once one does, uploads need a key or a staff login (the page),
    and so do reads when API_KEYS_REQUIRED_FOR_READ is set."""

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in SAFE_METHODS and not settings.API_KEYS_REQUIRED_FOR_READ:
            return True
        if request.auth is not None or request.user.is_staff:
            return True
        return not keys_configured()
