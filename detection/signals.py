from functools import partial

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from detection.broadcast import broadcast_detection_created
from detection.models import Detection


@receiver(post_save, sender=Detection, dispatch_uid="broadcast_new_detection")
def broadcast_new_detection(sender: type[Detection], instance: Detection, created: bool, **kwargs: object) -> None:
    # After the commit, so no client hears of a row (or its files) before it is there.
    if created:
        transaction.on_commit(partial(broadcast_detection_created, instance))
