from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from detection.broadcast import broadcast_detection_created
from detection.models import Detection
from detection.services import detection_delete_files


@receiver(post_save, sender=Detection, dispatch_uid="broadcast_new_detection")
def broadcast_new_detection(sender: type[Detection], instance: Detection, created: bool, **kwargs: object) -> None:
    # After the commit, so no client hears of a row (or its files) before it is there.
    if created:
        transaction.on_commit(partial(broadcast_detection_created, instance))


@receiver(post_delete, sender=Detection, dispatch_uid="delete_detection_files")
def delete_detection_files(sender: type[Detection], instance: Detection, **kwargs: object) -> None:
    # However the row goes (admin, shell, bulk delete), its files follow once the delete is committed.
    transaction.on_commit(partial(detection_delete_files, instance))
