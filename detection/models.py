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
    """One uploaded photo, the faces found in it and its annotated copy."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    original = models.ImageField(upload_to=original_upload_to, max_length=255)
    annotated = models.ImageField(upload_to=annotated_upload_to, max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    faces = models.JSONField(default=list)
    face_count = models.PositiveIntegerField(db_index=True)
    detector_name = models.CharField(max_length=50)
    detector_version = models.CharField(max_length=50)
    detector_profile = models.CharField(max_length=20)
    annotate_style = models.CharField(max_length=20)  # box, blur or pixelate
    processing_ms = models.FloatField(help_text="Time spent decoding, detecting and drawing, in milliseconds.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.face_count} faces)"
