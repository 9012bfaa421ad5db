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
        super().__init__(application, allowed_origins=[])  # read from settings on each handshake

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern) for pattern in settings.ALLOWED_HOSTS
        )
