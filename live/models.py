from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from vision.imaging import ANNOTATORS
from vision.profiles import PROFILES


class Camera(models.Model):
    """A network camera (RTSP, HTTP MJPEG, or a video file) that a camera watcher samples, storing a
    detection when faces appear. The settings are the operator's; the state is the watcher's."""

    class State(models.TextChoices):
        IDLE = "idle"  # no watcher has it (disabled, or no watcher running)
        CONNECTING = "connecting"
        CONNECTED = "connected"
        RETRYING = "retrying"  # lost or refused; tried again after a backoff

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=1000, help_text="rtsp://..., http(s)://... (MJPEG or any stream FFmpeg reads), or a file path."
    )
    enabled = models.BooleanField(default=True)
    sample_fps = models.FloatField(
        default=2.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(30)],
        help_text="Frames per second to look at.",
    )
    # fast: 8 cameras of 1080p at 2 fps fit 2 cores (README, Cameras); balanced finds smaller faces at
    # 1.5 times the cost.
    profile = models.CharField(max_length=20, choices=[(name, name) for name in PROFILES], default="fast")
    min_confidence = models.FloatField(default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    min_face_size = models.PositiveIntegerField(default=0, help_text="In pixels, the box's shorter side.")
    cooldown_seconds = models.PositiveIntegerField(
        default=30, help_text="While the same faces stay in view, one detection per this many seconds at most."
    )
    store_snapshots = models.BooleanField(
        default=True, help_text="Store a detection (original and annotated) when faces appear; else only announce."
    )
    annotate_style = models.CharField(
        max_length=20, choices=[(name, name) for name in ANNOTATORS], default="box", verbose_name="annotation"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The state, as the watcher that has this camera last saw it.
    state = models.CharField(max_length=20, choices=State.choices, default=State.IDLE, editable=False)
    state_changed_at = models.DateTimeField(null=True, editable=False)
    last_frame_at = models.DateTimeField(null=True, editable=False)
    sampled_fps = models.FloatField(null=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    watched_by = models.CharField(max_length=200, blank=True, editable=False, help_text="host:pid of its watcher.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
