"""Processing a video as a task of Django's Tasks framework, on the "videos" backend (settings.TASKS):
in queue mode the RQ queue "videos" (the workers of `make worker` take it after the photos' queue), in
embedded mode a background thread of the server (facesite.task_backends.BackgroundThreadBackend),
never the request that uploaded it."""

from django_tasks import task

from facesite.task_backends import VIDEO_QUEUE
from videos.services import video_process


@task(backend="videos", queue_name=VIDEO_QUEUE)
def process_video_task(video_id: str) -> None:
    video_process(video_id=video_id)


def runs_in_server() -> bool:
    """Embedded mode: this server's own background thread runs the videos (no queue, no workers)."""
    from facesite.task_backends import BackgroundThreadBackend

    return isinstance(process_video_task.get_backend(), BackgroundThreadBackend)
