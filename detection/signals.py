from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from detection.broadcast import broadcast_detection
from detection.models import Detection
from detection.services import detection_delete_files
from detection.tasks import runs_in_request


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
