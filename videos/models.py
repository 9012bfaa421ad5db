import uuid

from django.db import models
from django.utils import timezone


def video_folder(video: "Video") -> str:
    # As detections': dated folders keep directories small, the id makes the path unique and unguessable.
    return f"videos/{video.created_at:%Y/%m/%d}/{video.id}"


def original_upload_to(video: "Video", filename: str) -> str:
    # The extension is ours (from the probed container), never the client's.
    return f"{video_folder(video)}/{filename}"


class Video(models.Model):
    """One uploaded video, processed in the background: pending until a task takes it, running
    while it does (with its progress), then done with the processed video, its faces file and a
    poster, or failed with the reason. The original is kept either way."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Written with every progress save: a running video whose row stopped changing was abandoned.
    updated_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    original = models.FileField(upload_to=original_upload_to, max_length=255)
    # What the upload asked for (or the server's defaults then).
    annotate_style = models.CharField(max_length=20)
    detector_profile = models.CharField(max_length=20)
    min_confidence = models.FloatField()
    min_face_size = models.PositiveIntegerField(default=0)
    detect_every = models.PositiveIntegerField()
    detector_name = models.CharField(max_length=50)
    detector_version = models.CharField(max_length=50)
    # The original as probed at the upload.
    size = models.PositiveBigIntegerField(help_text="Bytes of the original.")
    container = models.CharField(max_length=20)
    codec = models.CharField(max_length=30)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    rotation = models.PositiveSmallIntegerField(default=0)
    fps = models.FloatField()
    duration = models.FloatField(help_text="Seconds.")
    has_audio = models.BooleanField(default=False)
    # Progress while running.
    frames_total = models.PositiveIntegerField(default=0)
    frames_done = models.PositiveIntegerField(default=0)
    processing_fps = models.FloatField(null=True)
    seconds_left = models.FloatField(null=True)
    # Who runs it ("host:pid"): a running video whose process is gone was cut short by a crash.
    runner = models.CharField(max_length=100, blank=True)
    # Known once done.
    video = models.FileField(max_length=255, blank=True)
    faces = models.FileField(max_length=255, blank=True)
    poster = models.FileField(max_length=255, blank=True)
    track_count = models.PositiveIntegerField(null=True)
    processing_seconds = models.FloatField(null=True)
    # Why a failed video failed: one of the API's error codes, and a sentence for people.
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        if self.status == self.Status.DONE:
            return f"{self.id} ({self.track_count} faces)"
        return f"{self.id} ({self.status})"

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        if not self.frames_total:
            return 0.0
        return min(1.0, self.frames_done / self.frames_total)

    def files(self) -> list[models.fields.files.FieldFile]:
        return [field for field in (self.original, self.video, self.faces, self.poster) if field]
