"""Channel layer settings: Redis when several processes must share messages, memory otherwise."""

# With Redis: "core" (the default) queues each message in Redis for each process's clients;
# "pubsub" publishes it once over Redis pub/sub (no queue: a process that is down misses it).
REDIS_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


# Each process has one channel in the faces group (detection.relay), so a channel's capacity is how
# many broadcasts may wait for one process; past it the layer drops them (Channels' default: 100).
# A live feed has no use for a message a minute old: a client that reconnects catches up with
# GET /image?after=. A group member that is not renewed (the relay renews hourly) leaves after a day.
QUEUEING = {"capacity": 1000, "expiry": 60, "group_expiry": 86400}


def channel_layers(redis_url: str, *, max_connections: int = 1000, prefix: str = "asgi", layer: str = "core") -> dict:
    if layer not in REDIS_BACKENDS:
        raise ValueError(f"CHANNEL_LAYER must be one of {', '.join(REDIS_BACKENDS)}, not {layer!r}")
    if not redis_url:
        # One process: messages stay inside it (the embedded default).
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": QUEUEING}}
    return {
        "default": {
            "BACKEND": REDIS_BACKENDS[layer],
            "CONFIG": {
                **(QUEUEING if layer == "core" else {}),  # pub/sub queues nothing: no capacity, no expiry
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
