"""Detection as a task of Django's Tasks framework (the django-tasks backport on Django 5.2, the
API Django 6 ships as django.tasks). The backend in settings.TASKS decides where it runs."""

from django_tasks import task
from django_tasks.backends.immediate import ImmediateBackend

from detection.services import detection_process


@task
def process_detection(detection_id: str) -> None:
    detection_process(detection_id=detection_id)


def runs_in_request() -> bool:
    """The immediate backend (embedded mode) runs a task inside enqueue(): in the caller's thread and
    transaction. Any other backend runs it later, elsewhere (a worker, another machine)."""
    return isinstance(process_detection.get_backend(), ImmediateBackend)
