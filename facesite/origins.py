from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Checks a browser's Origin against ALLOWED_HOSTS, and lets scripts in.

    Browsers always send Origin on a websocket handshake, so checking it stops other sites'
    pages from listening. Scripts (Python websockets, websocat) send none; Channels'
    AllowedHostsOriginValidator would reject them unless ALLOWED_HOSTS has "*".
    """

    def __init__(self, application: object) -> None:
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)
