"""ASGI middleware that keeps a client from choosing the root path of the URLs we send."""


class IgnoreClientRootPath:
    """Daphne copies a request's `Daphne-Root-Path` header into the scope's root_path, which Django
    puts in front of every URL it builds: the Location and detail_url of an upload, and the message
    every /faces client receives. Any client can send that header, so it counts for nothing here;
    URLs come from PUBLIC_URL or the host each client asked for."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] in {"http", "websocket"}:
            scope = {**scope, "root_path": ""}
        return await self.app(scope, receive, send)
