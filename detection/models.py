import uuid
from pathlib import PurePosixPath

from django.db import models
from django.utils import timezone


def _detection_folder(detection: "Detection") -> str:
    # Dated folders keep directories small; the id makes the path unique and unguessable.
    return f"detections/{detection.created_at:%Y/%m/%d}/{detection.id}"


def original_upload_to(detection: "Detection", filename: str) -> str:
    # Only the extension survives, and it is ours (from the decoded format), not the client's.
    return f"{_detection_folder(detection)}/original{PurePosixPath(filename).suffix}"


def annotated_upload_to(detection: "Detection", filename: str) -> str:
    return f"{_detection_folder(detection)}/annotated.jpg"


class Detection(models.Model):
    """One uploaded photo, the faces found in it and its annotated copy.

    A detection is pending from the upload until a task has run it: then done, with the faces and
    the annotated copy, or failed, with the reason. Rows from before queue mode are all done.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    class Source(models.TextChoices):
        UPLOAD = "upload"  # POST /image
        STREAM = "stream"  # a snapshot of a /stream
        CAMERA = "camera"  # a camera the server watches

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DONE, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD, db_index=True)
    # The camera whose frame this is (source camera); null once that camera is deleted.
    camera = models.ForeignKey(
        "live.Camera", null=True, blank=True, on_delete=models.SET_NULL, related_name="detections"
    )
    original = models.ImageField(upload_to=original_upload_to, max_length=255)
    # What the upload asked for (or the server's defaults then), for the task that runs it.
    detector_profile = models.CharField(max_length=20)
    min_confidence = models.FloatField(null=True)  # null on rows from before queue mode
    min_face_size = models.PositiveIntegerField(default=0)
    max_faces = models.PositiveIntegerField(null=True)
    annotate_style = models.CharField(max_length=20)  # box, blur or pixelate
    detector_name = models.CharField(max_length=50)
    detector_version = models.CharField(max_length=50)
    # Known once the detection is done.
    annotated = models.ImageField(upload_to=annotated_upload_to, max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    faces = models.JSONField(null=True)
    face_count = models.PositiveIntegerField(null=True, db_index=True)
    processing_ms = models.FloatField(
        null=True, help_text="Time spent decoding, detecting and drawing, in milliseconds."
    )
    # Why a failed detection failed: one of the API's error codes, and a sentence for people.
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        if self.status == self.Status.DONE:
            return f"{self.id} ({self.face_count} faces)"
        return f"{self.id} ({self.status})"
