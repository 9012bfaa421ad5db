"""The JSON contract of a video, shared by the REST API and the /faces websocket."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.serializers import DetectionErrorSerializer
from videos.models import Video
from vision.detector import PROFILES
from vision.imaging import ANNOTATORS
from vision.profiles import MAX_DETECT_EVERY


def _url(field) -> str | None:
    return field.url if field else None


class VideoSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(
        choices=Video.Status.choices,
        help_text="`pending` until processing starts, `running` while it does, then `done` or `failed` (see `error`).",
    )
    progress = serializers.FloatField(help_text="Share of the frames processed, 0 to 1.")
    processing_fps = serializers.FloatField(allow_null=True, help_text="Frames processed per second lately.")
    seconds_left = serializers.FloatField(allow_null=True, help_text="Estimated seconds until done.")
    detail_url = serializers.SerializerMethodField(help_text="Absolute URL of this video's JSON.")
    original_url = serializers.SerializerMethodField(help_text="Absolute URL of the original upload.")
    url = serializers.SerializerMethodField(help_text="Absolute URL of the processed video (MP4); null until done.")
    faces_url = serializers.SerializerMethodField(
        help_text="Absolute URL of the faces file (JSON: each face's track, its box per frame); null until done."
    )
    poster_url = serializers.SerializerMethodField(help_text="A frame of the processed video (JPEG); null until done.")
    duration = serializers.FloatField(help_text="Seconds.")
    size = serializers.IntegerField(help_text="Bytes of the original.")
    track_count = serializers.IntegerField(allow_null=True, help_text="Distinct faces (tracks) seen; null until done.")
    error = serializers.SerializerMethodField(help_text="Why the video failed; null unless `failed`.")

    class Meta:
        model = Video
        fields = [
            "id",
            "status",
            "progress",
            "frames_done",
            "frames_total",
            "processing_fps",
            "seconds_left",
            "created_at",
            "detail_url",
            "original_url",
            "url",
            "faces_url",
            "poster_url",
            "duration",
            "width",
            "height",
            "fps",
            "size",
            "has_audio",
            "track_count",
            "annotate_style",
            "detector_profile",
            "min_confidence",
            "min_face_size",
            "detect_every",
            "error",
        ]

    @extend_schema_field(serializers.URLField())
    def get_detail_url(self, video: Video) -> str:
        return reverse("video-detail", kwargs={"video_id": video.id})

    @extend_schema_field(serializers.URLField())
    def get_original_url(self, video: Video) -> str:
        return video.original.url

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, video: Video) -> str | None:
        return _url(video.video) if video.status == Video.Status.DONE else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_faces_url(self, video: Video) -> str | None:
        return _url(video.faces) if video.status == Video.Status.DONE else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_poster_url(self, video: Video) -> str | None:
        return _url(video.poster) if video.status == Video.Status.DONE else None

    @extend_schema_field(DetectionErrorSerializer(allow_null=True))
    def get_error(self, video: Video) -> dict | None:
        if video.status != Video.Status.FAILED:
            return None
        return {"code": video.error_code, "message": video.error_message}


class VideoUploadSerializer(serializers.Serializer):
    """The upload's fields, also accepted in the query string (for raw-body uploads)."""

    video = serializers.FileField(help_text="The video: MP4/MOV, MKV/WebM or AVI, judged from its bytes.")
    annotate = serializers.ChoiceField(
        choices=list(ANNOTATORS),
        required=False,
        default="box",
        source="annotate_style",
        help_text="`box` (default) frames each face; `blur` and `pixelate` anonymise them.",
    )
    profile = serializers.ChoiceField(
        choices=list(PROFILES),
        required=False,
        help_text="Speed against recall of small faces. Default: the server's VIDEO_PROFILE.",
    )
    min_confidence = serializers.FloatField(
        required=False,
        min_value=0.05,  # below, a frame's "faces" are noise, and costly (as a live stream's)
        max_value=1.0,
        help_text="Keep only faces at least this confident (0.05-1). Default: the server's VIDEO_MIN_CONFIDENCE.",
    )
    min_face_size = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=100_000,
        help_text="Keep only faces whose box is at least this many pixels on its shorter side.",
    )
    detect_every = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DETECT_EVERY,
        help_text="Run the detector on every Nth frame and follow the faces in between: higher is faster. "
        "Default: the server's VIDEO_DETECT_EVERY.",
    )

    def to_internal_value(self, data: object) -> dict:
        values = super().to_internal_value(data)
        values.setdefault("profile", settings.VIDEO_PROFILE)
        values.setdefault("min_confidence", settings.VIDEO_MIN_CONFIDENCE)
        values.setdefault("detect_every", settings.VIDEO_DETECT_EVERY)
        return values


class VideoParamsSerializer(VideoUploadSerializer):
    """What the view validates: the video itself is judged by probing it."""

    video = None


class VideoListParamsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Video.Status.choices, required=False, help_text="Only videos in this state, e.g. `done`."
    )
