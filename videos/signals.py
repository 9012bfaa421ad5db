from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django_tasks import TaskResult, TaskResultStatus
from django_tasks.signals import task_finished

from videos.models import Video
from videos.services import video_abandon, video_delete_files
from videos.tasks import process_video_task


@receiver(post_delete, sender=Video, dispatch_uid="delete_video_files")
def delete_video_files(sender: type[Video], instance: Video, **kwargs: object) -> None:
    # However the row goes (DELETE /video/<id>, the admin, a bulk delete), its files follow once the
    # delete is committed. A running job notices the row is gone and removes its own temporary files.
    transaction.on_commit(partial(video_delete_files, instance))


@receiver(task_finished, dispatch_uid="fail_abandoned_video")
def fail_abandoned_video(sender: type, task_result: TaskResult, **kwargs: object) -> None:
    # The task records its own failures; a failed task whose video is still pending or running is one
    # whose worker died (RQ reports it once the job's heartbeat expires) or that broke past our handling.
    failed = task_result.status == TaskResultStatus.FAILED
    if failed and task_result.task.module_path == process_video_task.module_path:
        video_abandon(video_id=task_result.args[0])
