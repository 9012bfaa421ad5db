"""Task backend settings: where detections run (detection/tasks.py)."""

from django.core.exceptions import ImproperlyConfigured

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
