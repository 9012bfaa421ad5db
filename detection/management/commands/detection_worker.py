import django_rq
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django_tasks_rq import Job
from rq import SimpleWorker
from rq.queue import Queue

from detection.tasks import runs_in_request


class DetectionWorker(SimpleWorker):
    """Runs one queued detection at a time in this very process. RQ's default worker forks a child
    per job: each would load the ONNX model again, and onnxruntime's threads do not survive a fork.
    Here the model loads once, on the first job, and stays."""

    def _shutdown(self) -> None:
        # RQ's SIGTERM handler raises StopRequested in whatever the worker is doing. Inside a log call (its
        # registry cleanup logs each abandoned detection it fails) logging swallows it, and the worker went
        # on waiting for jobs until SIGKILL. With the flag, its loop stops at the next check either way.
        self._stop_requested = True
        super()._shutdown()

    def execute_job(self, job: Job, queue: Queue) -> None:
        # As around a request: a database connection that was dropped or is too old is not reused.
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()


class Command(BaseCommand):
    help = "Run queued detections (TASKS_BACKEND=rq), one at a time, until stopped (SIGTERM finishes the current one)."

    def handle(self, *args: object, **options: object) -> None:
        if runs_in_request():
            raise CommandError(
                "There is no queue to work on: with TASKS_BACKEND unset (immediate), each upload is detected "
                "inside its own request. Set TASKS_BACKEND=rq and REDIS_URL, the same as the server's."
            )
        worker = django_rq.get_worker("default", worker_class=DetectionWorker, job_class=Job)
        worker.work()
