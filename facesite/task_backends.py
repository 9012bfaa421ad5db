"""Task backend settings: where detections run (detection/tasks.py)."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

# Seconds an upload may wait to reach the queue's Redis: without it a host that drops packets holds
# each upload for the system's TCP timeout (minutes) before its 503.
QUEUE_CONNECT_TIMEOUT = 5

# "immediate" (the default): inside the upload's own request, answered 201 with the result; one
# process, nothing else to run. "rq": on worker processes (`make worker`, here or on other machines)
# that take detections from a queue in Redis; uploads are answered 202 at once.
BACKENDS = {
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "rq": "django_tasks_rq.RQBackend",
}


def task_backends(backend: str, *, redis_url: str) -> dict:
    """Django's TASKS setting; queue mode without Redis is refused, since the queue lives there."""
    if backend not in BACKENDS:
        raise ImproperlyConfigured(f"TASKS_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "rq" and not redis_url:
        raise ImproperlyConfigured(
            "TASKS_BACKEND=rq needs REDIS_URL: the queue lives in Redis, where the server puts each "
            "upload and the workers (make worker) take it. Set REDIS_URL on the server and the workers, "
            "or leave TASKS_BACKEND unset to detect inside each request."
        )
    return {"default": {"BACKEND": BACKENDS[backend]}}


def rq_queues(redis_url: str) -> dict:
    """django-rq's RQ_QUEUES: one queue in REDIS_URL, reached within QUEUE_CONNECT_TIMEOUT unless
    the URL says otherwise (django-rq takes connection options from the URL only)."""
    parts = urlsplit(redis_url)
    query = {"socket_connect_timeout": str(QUEUE_CONNECT_TIMEOUT), **dict(parse_qsl(parts.query))}
    return {"default": {"URL": urlunsplit(parts._replace(query=urlencode(query)))}}
