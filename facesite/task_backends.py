"""Task backend settings: where detections (detection/tasks.py) and videos (videos/tasks.py) run."""

import logging
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connection
from django_tasks.backends.immediate import ImmediateBackend

logger = logging.getLogger(__name__)

# Seconds an upload may wait to reach the queue's Redis: without it a host that drops packets holds
# each upload for the system's TCP timeout (minutes) before its 503.
QUEUE_CONNECT_TIMEOUT = 5
# The RQ queue of videos: minutes of work each, apart from the photos' queue so that a worker takes
# the photos first (`make worker` takes both) and a video's long timeout is its own.
VIDEO_QUEUE = "videos"

# "immediate" (the default): inside the upload's own request, answered 201 with the result; one
# process, nothing else to run. "rq": on worker processes (`make worker`, here or on other machines)
# that take detections from a queue in Redis; uploads are answered 202 at once.
BACKENDS = {
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "rq": "django_tasks_rq.RQBackend",
}
# Videos never run inside the request that uploaded them: in embedded mode, on a thread of the server.
VIDEO_BACKENDS = {
    "immediate": "facesite.task_backends.BackgroundThreadBackend",
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
    return {
        "default": {"BACKEND": BACKENDS[backend]},
        "videos": {"BACKEND": VIDEO_BACKENDS[backend], "QUEUES": [VIDEO_QUEUE]},
    }


def rq_queues(redis_url: str, *, video_timeout: int = 3600) -> dict:
    """django-rq's RQ_QUEUES: the photos' queue and the videos' in REDIS_URL, reached within
    QUEUE_CONNECT_TIMEOUT unless the URL says otherwise (django-rq takes connection options from the
    URL only); a video job may run `video_timeout` seconds."""
    parts = urlsplit(redis_url)
    query = {"socket_connect_timeout": str(QUEUE_CONNECT_TIMEOUT), **dict(parse_qsl(parts.query))}
    url = urlunsplit(parts._replace(query=urlencode(query)))
    return {"default": {"URL": url}, VIDEO_QUEUE: {"URL": url, "DEFAULT_TIMEOUT": video_timeout}}


def lower_priority() -> None:
    from live.streams import lower_priority as nicer  # imports Django settings: not at settings time

    nicer()


class BackgroundThreadBackend(ImmediateBackend):
    """Runs each task later, on one background thread of this process, in the order enqueued: the
    videos of embedded mode (`make run` alone), which take minutes and must not hold their upload's
    request. One at a time: each of a video's frames already takes a detection turn on this process's
    cores (detection.slots), and its codecs use the cores too. The thread is 10 nicer than the process
    (as live streams' are): uploads' detections and the event loop run first when the cores are busy."""

    supports_priority = False

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=alias, initializer=lower_priority)

    def enqueue(self, task, args, kwargs):
        from django_tasks.base import TaskResult, TaskResultStatus
        from django_tasks.utils import get_random_id

        self.validate_task(task)
        task_result = TaskResult(
            task=task,
            id=get_random_id(),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        self.executor.submit(self._run, task_result)
        return task_result

    def _run(self, task_result) -> None:
        close_old_connections()
        try:
            self._execute_task(task_result)
        except BaseException:
            logger.exception("background task %s failed", task_result.task.module_path)
        finally:
            # This thread's own connection: not left open between tasks (SQLite holds a lock with it).
            connection.close()
