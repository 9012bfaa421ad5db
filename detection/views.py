"""HTTP views: thin wrappers around services and selectors. No OpenCV here."""

import logging
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.generic import TemplateView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from detection.errors_http import error_response
from detection.health import readiness
from detection.models import Detection
from detection.parsers import ImageBodyParser, too_many_bytes
from detection.selectors import detection_get, detection_list
from detection.serializers import (
    DetectionListParamsSerializer,
    DetectionParamsSerializer,
    DetectionSerializer,
    DetectionUploadSerializer,
    with_base_url,
)
from detection.services import detection_create, detection_log_fields
from vision.errors import ImageMissing
from vision.imaging import CONTENT_TYPE_BY_EXTENSION

MEDIA_CACHE_SECONDS = 365 * 24 * 3600
# What media holds: photos, and videos with their faces files (videos/).
MEDIA_TYPE_BY_EXTENSION = {
    **CONTENT_TYPE_BY_EXTENSION,
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
    "json": "application/json",
}
logger = logging.getLogger(__name__)

ERROR_SCHEMA = inline_serializer(
    "Error",
    {"error": inline_serializer("ErrorDetail", {"code": serializers.CharField(), "message": serializers.CharField()})},
)


def request_base_url(request: Request) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def _uploaded_image(request: Request) -> bytes:
    upload = request.FILES.get("image")
    if upload is None:
        raise ImageMissing(
            "No image was sent. Send the photo as the multipart field 'image' (curl -F image=@photo.jpg) "
            "or as the raw body with an image/* Content-Type."
        )
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise too_many_bytes(upload.size)
    return upload.read()


class DetectionPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class DetectionListCreateView(GenericAPIView):
    serializer_class = DetectionSerializer
    pagination_class = DetectionPagination
    parser_classes = [MultiPartParser, FormParser, ImageBodyParser]

    @extend_schema(
        operation_id="detections_list",
        summary="Recent detections, newest first",
        parameters=[DetectionListParamsSerializer],
        responses=DetectionSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        params = DetectionListParamsSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        page = self.paginate_queryset(detection_list(**params.validated_data))
        base_url = request_base_url(request)
        items = [with_base_url(item, base_url) for item in DetectionSerializer(page, many=True).data]
        return self.get_paginated_response(items)

    @extend_schema(
        operation_id="detections_create",
        summary="Detect the faces in a photo",
        description="Stores the photo and a copy with every face boxed, and announces it on the /faces websocket. "
        "Send the photo as the multipart field `image`, or as the raw body with an `image/*` Content-Type "
        "(then `min_confidence` goes in the query string). "
        "In queue mode the answer comes at once (202, `status: pending`) and a worker detects the faces: "
        "poll the `Location` URL, or listen on /faces for `detection.created` or `detection.failed`.",
        parameters=[DetectionParamsSerializer],
        request={"multipart/form-data": DetectionUploadSerializer, "image/*": OpenApiTypes.BINARY},
        responses={
            201: OpenApiResponse(DetectionSerializer, description="Done: the faces and the annotated copy."),
            202: OpenApiResponse(
                DetectionSerializer,
                description="Queue mode: stored and queued, `status: pending`; `Location` is its detail URL, "
                "which says `done` (with the faces) or `failed` (with the reason) once a worker has run it.",
            ),
            400: OpenApiResponse(ERROR_SCHEMA, description="No image, empty, corrupt, or a bad parameter."),
            413: OpenApiResponse(ERROR_SCHEMA, description="Too many bytes or pixels, or a side over 65,500 pixels."),
            415: OpenApiResponse(ERROR_SCHEMA, description="Not an image in a supported format."),
            422: OpenApiResponse(
                ERROR_SCHEMA, description="Far more decoding work than the bytes sent justify (a decompression bomb)."
            ),
            503: OpenApiResponse(
                ERROR_SCHEMA, description="Too many detections at once, or the queue is out of reach; see Retry-After."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        image_bytes = _uploaded_image(request)
        # Form fields over the query string's. Kept a QueryDict, so that DRF reads it as a form: an empty
        # field (a form's field left blank, the API docs' form included) is an option not given.
        fields = request.query_params.copy()
        fields.update(request.data)
        params = DetectionParamsSerializer(data=fields)
        params.is_valid(raise_exception=True)
        detection = detection_create(image_bytes=image_bytes, **params.validated_data)
        done = detection.status == Detection.Status.DONE
        logger.info(
            "detection created" if done else "detection queued",
            extra={
                "fields": {
                    **detection_log_fields(detection),
                    "bytes": len(image_bytes),
                    "client": request.META.get("REMOTE_ADDR"),
                }
            },
        )
        body = with_base_url(DetectionSerializer(detection).data, request_base_url(request))
        return Response(
            body,
            status=status.HTTP_201_CREATED if done else status.HTTP_202_ACCEPTED,
            headers={"Location": body["detail_url"]},
        )


class DetectionDetailView(APIView):
    @extend_schema(
        operation_id="detections_retrieve",
        summary="One detection",
        responses={200: DetectionSerializer, 404: ERROR_SCHEMA},
    )
    def get(self, request: Request, detection_id: uuid.UUID) -> Response:
        detection = detection_get(detection_id=detection_id)
        if detection is None:
            raise NotFound(f"No detection has the id {detection_id}.")
        return Response(with_base_url(DetectionSerializer(detection).data, request_base_url(request)))


class IgnoreClientContentNegotiation(BaseContentNegotiation):
    """Image responses are what they are, whatever the Accept header asks for."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MediaFileView(APIView):
    """Serves stored images and videos (also with DEBUG off), a byte range of them when asked. Their
    paths are unique, so they never change."""

    content_negotiation_class = IgnoreClientContentNegotiation

    @extend_schema(exclude=True)
    def get(self, request: Request, path: str) -> HttpResponseBase:
        try:
            size = default_storage.size(path)
            modified = default_storage.get_modified_time(path)
            image = default_storage.open(path, "rb")
        except (OSError, ValueError, SuspiciousFileOperation):  # ValueError: a NUL byte in the path
            raise NotFound(f"No file is stored at {request.path}.") from None
        etag = f'"{size:x}-{int(modified.timestamp() * 1_000_000):x}"'
        last_modified = int(modified.timestamp())
        not_modified = get_conditional_response(request, etag=etag, last_modified=last_modified)
        if not_modified is not None:
            image.close()
            return not_modified
        extension = path.rsplit(".", 1)[-1].lower()
        content_type = MEDIA_TYPE_BY_EXTENSION.get(extension, "application/octet-stream")
        wanted = request.headers.get("Range") if request.headers.get("If-Range", etag) == etag else None
        span = byte_range(wanted, size) if wanted else None
        if span is None:
            response = FileResponse(image, content_type=content_type)
        elif span == UNSATISFIABLE:
            image.close()
            message = f"The range asked for starts past the end of the file ({size} bytes)."
            response = error_response("range_not_satisfiable", message, status=416)
            response["Content-Range"] = f"bytes */{size}"
        else:
            response = _partial_response(image, span, size=size, content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = etag
        response["Last-Modified"] = http_date(last_modified)
        response["Cache-Control"] = f"public, max-age={MEDIA_CACHE_SECONDS}, immutable"
        return response


UNSATISFIABLE = (-1, -1)
RANGE_CHUNK_BYTES = 256 * 1024


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte of a single `Range: bytes=...` (RFC 9110 14.1.2) of a file of `size`
    bytes; None for a header we do not serve (several ranges, another unit: the whole file then),
    UNSATISFIABLE for a range wholly past the end. Browsers ask for ranges to play and seek in a
    video (Safari plays none without them)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last) or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # the last N bytes
        if int(last) == 0:
            return UNSATISFIABLE
        return max(0, size - int(last)), size - 1
    start = int(first)
    if start >= size:
        return UNSATISFIABLE
    return start, min(int(last), size - 1) if last else size - 1


def _partial_response(file: object, span: tuple[int, int], *, size: int, content_type: str) -> StreamingHttpResponse:
    start, end = span

    def chunks() -> Iterator[bytes]:
        with file:
            file.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := file.read(min(RANGE_CHUNK_BYTES, left))):
                left -= len(chunk)
                yield chunk

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    return response


class HealthzView(APIView):
    # Probes need no key and are never throttled.
    permission_classes = []
    throttle_classes = []

    @extend_schema(
        summary="The process is alive",
        responses={200: inline_serializer("Health", {"status": serializers.CharField()})},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyzView(APIView):
    permission_classes = []
    throttle_classes = []

    @extend_schema(
        summary="Database, media storage, channel layer and detector all work",
        responses={
            (200, "application/json"): inline_serializer(
                "Readiness",
                {"status": serializers.CharField(), "checks": serializers.DictField(child=serializers.CharField())},
            ),
            503: OpenApiResponse(description="At least one check failed; `checks` says which."),
        },
    )
    def get(self, request: Request) -> Response:
        checks = readiness()
        ready = all(outcome == "ok" for outcome in checks.values())
        return Response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


# The page loads only its own script, styles and images, and talks only to this server.
PAGE_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class IndexView(TemplateView):
    template_name = "detection/index.html"

    def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = PAGE_CONTENT_SECURITY_POLICY
        return response
