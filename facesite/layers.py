"""Channel layer settings: Redis when several processes must share messages, memory otherwise."""


def channel_layers(redis_url: str, *, max_connections: int = 1000, prefix: str = "asgi") -> dict:
    if not redis_url:
        # One process: messages stay inside it (the embedded default).
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "prefix": prefix,
                "hosts": [
                    {
                        "address": redis_url,
                        # redis-py 8 defaults to a 5 s socket timeout, which aborts the layer's
                        # blocking receive and drops every websocket with 1011 after ~5 s.
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        # redis-py 8 caps an async pool at 100 connections by default.
                        "max_connections": max_connections,
                    }
                ],
            },
        }
    }
