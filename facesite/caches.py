"""Cache settings: Redis (shared by every process: rate limits) when there is one, memory otherwise."""


def caches(redis_url: str, *, timeout: float) -> dict:
    if not redis_url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            # Bounded: a Redis that does not answer must not hold requests (access/throttling.py).
            "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout},
        }
    }
