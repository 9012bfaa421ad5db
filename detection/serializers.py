"""The JSON contract of a detection, shared by the REST API and the /faces websocket."""

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.models import Detection
from detection.selectors import detection_get
from vision.detector import PROFILES
from vision.imaging import ANNOTATORS

# Rendered as paths; each client gets them made absolute with the base URL it used to reach us.
URL_FIELDS = ("url", "original_url", "detail_url", "faces_url", "poster_url")


def with_base_url(payload: dict, base_url: str) -> dict:
    # Paths get the client's base; URLs that are already absolute (media on S3) stay as they are, and
    # messages without them (a camera's status) as they are. A video's messages carry it as "video".
    absolute = {
        **payload,
        **{field: base_url + payload[field] for field in URL_FIELDS if (payload.get(field) or "").startswith("/")},
    }
    if isinstance(payload.get("video"), dict):
        absolute["video"] = with_base_url(payload["video"], base_url)
    return absolute


class BoxSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class FaceSerializer(serializers.Serializer):
    box = BoxSerializer()
    confidence = serializers.FloatField(help_text="In (0, 1].")
    landmarks = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text="Five [x, y] points: right eye, left eye, nose tip, right and left mouth corners.",
    )


class DetectorSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    profile = serializers.ChoiceField(choices=list(PROFILES))


class DetectionErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The same codes as the API's error responses, e.g. corrupt_image.")
    message = serializers.CharField()


class DetectionSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(
        choices=Detection.Status.choices,
        help_text="`done` once the faces are found; in queue mode `pending` until a worker has run it, "
        "or `failed` (see `error`).",
    )
    url = serializers.SerializerMethodField(help_text="Absolute URL of the annotated image; null until done.")
    original_url = serializers.SerializerMethodField(help_text="Absolute URL of the original upload.")
    detail_url = serializers.SerializerMethodField(help_text="Absolute URL of this detection's JSON.")
    faces = FaceSerializer(many=True, allow_null=True, help_text="Most confident first; null until done.")
    detector = serializers.SerializerMethodField()
    annotate = serializers.CharField(source="annotate_style", help_text="How the annotated image shows the faces.")
    error = serializers.SerializerMethodField(help_text="Why the detection failed; null unless `failed`.")
    source = serializers.ChoiceField(
        choices=Detection.Source.choices,
        help_text="Where the photo came from: `upload` (POST /image), `stream` (a snapshot of a /stream) "
        "or `camera` (a camera the server watches).",
    )
    camera = serializers.SlugRelatedField(
        slug_field="name", read_only=True, help_text="The name of the camera whose frame this is; null otherwise."
    )

    class Meta:
        model = Detection
        fields = [
            "id",
            "status",
            "url",
            "original_url",
            "detail_url",
            "width",
            "height",
            "face_count",
            "faces",
            "created_at",
            "detector",
            "annotate",
            "error",
            "source",
            "camera",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, detection: Detection) -> str | None:
        return detection.annotated.url if detection.annotated else None

    @extend_schema_field(serializers.URLField())
    def get_original_url(self, detection: Detection) -> str:
        return detection.original.url

    @extend_schema_field(serializers.URLField())
    def get_detail_url(self, detection: Detection) -> str:
        return reverse("detection-detail", kwargs={"detection_id": detection.id})

    @extend_schema_field(DetectorSerializer())
    def get_detector(self, detection: Detection) -> dict:
        return {
            "name": detection.detector_name,
            "version": detection.detector_version,
            "profile": detection.detector_profile,
        }

    @extend_schema_field(DetectionErrorSerializer(allow_null=True))
    def get_error(self, detection: Detection) -> dict | None:
        if detection.status != Detection.Status.FAILED:
            return None
        return {"code": detection.error_code, "message": detection.error_message}


class DetectionUploadSerializer(serializers.Serializer):
    """The upload's fields, also accepted in the query string (for raw-body uploads)."""

    image = serializers.FileField(help_text="The photo: JPEG, PNG, WebP, AVIF, HEIC, BMP, TIFF or GIF (first frame).")
    min_confidence = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Report only faces at least this confident (0-1). Default: the server's DETECTOR_MIN_CONFIDENCE, "
        "or ANONYMISE_MIN_CONFIDENCE with `annotate` `blur` or `pixelate`.",
    )
    profile = serializers.ChoiceField(
        choices=list(PROFILES),
        required=False,
        help_text="Speed against recall of small faces: "
        + "; ".join(f"`{profile.name}`: {profile.description}" for profile in PROFILES.values())
        + ". Default: the server's DETECTOR_PROFILE, or ANONYMISE_PROFILE with `annotate` `blur` or `pixelate`.",
    )
    min_face_size = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=100_000,
        help_text="Report only faces whose box is at least this many pixels on its shorter side.",
    )
    max_faces = serializers.IntegerField(
        required=False, min_value=1, max_value=10_000, help_text="Report at most this many faces, the largest ones."
    )
    annotate = serializers.ChoiceField(
        choices=list(ANNOTATORS),
        required=False,
        default="box",
        source="annotate_style",
        help_text="`box` (default) frames each face with its confidence and landmarks; "
        "`blur` and `pixelate` anonymise the faces instead, with defaults that favour recall.",
    )


def upload_form_defaults(result: dict, **kwargs: object) -> dict:
    """A drf-spectacular postprocessing hook: the options whose defaults come from the settings are
    documented with them (read now, as an upload reads them), so that the API docs' form starts from
    what the server does by default, not from samples built from each option's limits (which found
    no faces). max_faces has no default (no limit): an empty example leaves its field blank."""
    options = result["components"]["schemas"]["DetectionUploadRequest"]["properties"]
    options["min_confidence"]["default"] = settings.DETECTOR_MIN_CONFIDENCE
    options["profile"]["default"] = settings.DETECTOR_PROFILE
    options["max_faces"]["example"] = ""
    return result


class DetectionParamsSerializer(DetectionUploadSerializer):
    """What the view validates: the image itself is checked by decoding it."""

    image = None


class DetectionListParamsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Detection.Status.choices,
        required=False,
        help_text="Only detections in this state, e.g. `done` for those with their faces found.",
    )
    after = serializers.CharField(
        required=False,
        help_text="Only detections created after this one: a detection id, or an ISO 8601 time such as "
        "2026-11-27T10:00:00Z. Clients use it to catch up on what they missed while disconnected.",
    )

    def validate_after(self, value: str) -> datetime:
        try:
            detection_id = uuid.UUID(value)
        except ValueError:
            return _moment(value)
        detection = detection_get(detection_id=detection_id)
        if detection is None:
            raise serializers.ValidationError(f"No detection has the id {value}.")
        return detection.created_at


def _moment(value: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (naive: UTC), or a ValidationError for a time that
    does not exist (month 99, an offset of a day or more) or that falls outside the years 1-9999 in UTC."""
    try:
        moment = parse_datetime(value.replace(" ", "+"))  # a "+" in a query string arrives as a space
        if moment is not None:
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        pass
    raise serializers.ValidationError(
        "Give a detection id or an ISO 8601 time between the years 1 and 9999 UTC, e.g. 2026-11-27T10:00:00Z."
    )
