"""Django's ASGI handler, with the middleware chain run as under WSGI: in one call, in the request's thread."""

from django.core.handlers.asgi import ASGIHandler


class SyncMiddlewareASGIHandler(ASGIHandler):
    """Under ASGI, Django builds an async middleware chain and runs each hook of each middleware
    (Django's own are MiddlewareMixin, sync at heart) in the request's thread by a call of its own,
    each a trip from the event loop to the thread and back: about twenty per request, and each waits
    for the loop, which a broadcast to thousands of websockets keeps busy. Every middleware here,
    and every view, is sync: the whole chain runs in one trip to the thread."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        # What Django does at the top of a chain whose outermost middleware is sync only.
        self._middleware_chain = self.adapt_method_mode(True, self._middleware_chain, False)
