import threading

import django_rq
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django_tasks_rq import Job
from rq import SimpleWorker
from rq.queue import Queue

from detection.tasks import runs_in_request
from facesite.task_backends import VIDEO_QUEUE
from videos.services import stopping as video_stopping

# A job's place in RQ's registry of started jobs lasts this long unless renewed. RQ's SimpleWorker runs
# the job in its own thread and renews nothing meanwhile, so it sets it to the job's whole timeout (a
# video's: hours), and a worker killed mid-video would leave its job "started" that long. Here a thread
# renews it every HEARTBEAT_SECONDS while the job runs: a dead worker's job is found abandoned (and its
# video failed) within a couple of minutes.
HEARTBEAT_TTL_SECONDS = 120
HEARTBEAT_SECONDS = 30


class DetectionWorker(SimpleWorker):
    """Runs one queued detection at a time in this very process. RQ's default worker forks a child
    per job: each would load the ONNX model again, and onnxruntime's threads do not survive a fork.
    Here the model loads once, on the first job, and stays."""

    def _shutdown(self) -> None:
        # A video in hand may have an hour to go (a photo, a second): it stops within about a second
        # instead, pending again and queued for the next worker (videos.services.stopping).
        video_stopping.set()
        # RQ's SIGTERM handler raises StopRequested in whatever the worker is doing. Inside a log call (its
        # registry cleanup logs each abandoned detection it fails) logging swallows it, and the worker went
        # on waiting for jobs until SIGKILL. With the flag, its loop stops at the next check either way.
        self._stop_requested = True
        super()._shutdown()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return HEARTBEAT_TTL_SECONDS

    def execute_job(self, job: Job, queue: Queue) -> None:
        # As around a request: a database connection that was dropped or is too old is not reused.
        close_old_connections()
        done = threading.Event()
        heart = threading.Thread(target=self.keep_alive, args=(job, done), name="heartbeat", daemon=True)
        heart.start()
        try:
            super().execute_job(job, queue)
        finally:
            done.set()
            heart.join()
            close_old_connections()

    def keep_alive(self, job: Job, done: threading.Event) -> None:
        """Renew the running job's (and this worker's) heartbeat until it is done."""
        while not done.wait(HEARTBEAT_SECONDS):
            execution = self.execution
            if execution is None:
                continue
            try:
                self.maintain_heartbeats(job, execution)  # RQ's own, as its forking worker's monitor calls it
            except Exception:
                self.log.warning("could not renew the heartbeat of job %s", job.id, exc_info=True)


class Command(BaseCommand):
    help = (
        "Run queued detections and videos (TASKS_BACKEND=rq), one at a time, photos first, until stopped "
        "(SIGTERM finishes the detection in hand; a video in hand is queued again for the next worker)."
    )

    def handle(self, *args: object, **options: object) -> None:
        if runs_in_request():
            raise CommandError(
                "There is no queue to work on: with TASKS_BACKEND unset (immediate), each upload is detected "
                "inside its own request. Set TASKS_BACKEND=rq and REDIS_URL, the same as the server's."
            )
        # Both queues, the photos' first: a photo waits at most for the video in hand, never for the
        # videos queued behind it. More workers (here or on other machines) run more at once.
        worker = django_rq.get_worker("default", VIDEO_QUEUE, worker_class=DetectionWorker, job_class=Job)
        worker.work()
