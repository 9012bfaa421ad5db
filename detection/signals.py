from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_tasks import TaskResult, TaskResultStatus
from django_tasks.signals import task_finished

from detection.broadcast import broadcast_detection
from detection.models import Detection
from detection.services import detection_abandon, detection_delete_files
from detection.tasks import process_detection, runs_in_request


@receiver(post_save, sender=Detection, dispatch_uid="broadcast_finished_detection")
def broadcast_finished_detection(
    sender: type[Detection], instance: Detection, created: bool, update_fields: frozenset[str] | None, **kwargs: object
) -> None:
    # When a save makes a detection done, or failed where failures are kept (queue mode: in embedded
    # mode a failure is the upload's own error answer, and the row goes); never a pending one, nor a
    # re-save. After the commit, so no client hears of a row (or its files) before it is there.
    announced = instance.status == Detection.Status.DONE or (
        instance.status == Detection.Status.FAILED and not runs_in_request()
    )
    if announced and (created or "status" in (update_fields or ())):
        transaction.on_commit(partial(broadcast_detection, instance))


@receiver(post_delete, sender=Detection, dispatch_uid="delete_detection_files")
def delete_detection_files(sender: type[Detection], instance: Detection, **kwargs: object) -> None:
    # However the row goes (admin, shell, bulk delete), its files follow once the delete is committed.
    transaction.on_commit(partial(detection_delete_files, instance))


@receiver(task_finished, dispatch_uid="fail_abandoned_detection")
def fail_abandoned_detection(sender: type, task_result: TaskResult, **kwargs: object) -> None:
    # The task records its own failures; a failed task whose detection is still pending is one whose
    # worker died. RQ finds those once their heartbeat expires (a worker's maintenance, within
    # minutes) and reports them failed here, in the worker that found them.
    failed = task_result.status == TaskResultStatus.FAILED
    if failed and task_result.task.module_path == process_detection.module_path and not runs_in_request():
        detection_abandon(detection_id=task_result.args[0])
