"""HTTP views of videos: thin wrappers around services and selectors."""

import logging
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from detection.serializers import with_base_url
from detection.views import ERROR_SCHEMA, DetectionPagination, request_base_url
from videos.parsers import VideoBodyParser
from videos.selectors import video_get, video_list
from videos.serializers import VideoListParamsSerializer, VideoParamsSerializer, VideoSerializer, VideoUploadSerializer
from videos.services import video_create, video_delete, video_log_fields
from vision.errors import VideoMissing

logger = logging.getLogger(__name__)


class VideoListCreateView(GenericAPIView):
    serializer_class = VideoSerializer
    pagination_class = DetectionPagination
    parser_classes = [MultiPartParser, FormParser, VideoBodyParser]

    @extend_schema(
        operation_id="videos_list",
        summary="Recent videos, newest first",
        parameters=[VideoListParamsSerializer],
        responses=VideoSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        params = VideoListParamsSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        page = self.paginate_queryset(video_list(**params.validated_data))
        base_url = request_base_url(request)
        items = [with_base_url(item, base_url) for item in VideoSerializer(page, many=True).data]
        return self.get_paginated_response(items)

    @extend_schema(
        operation_id="videos_create",
        summary="Box, blur or pixelate every face of a video",
        description="Send the video as the multipart field `video`, or as the raw body with a `video/*` "
        "Content-Type (then the options go in the query string). The container and codecs are judged from the "
        "bytes; duration, resolution and size have limits, checked before any work. The answer comes at once "
        "(202, `status: pending`): the video is processed in the background. Poll the `Location` URL, or "
        "listen on /faces for `video.progress`, then `video.done` or `video.failed`.",
        parameters=[VideoParamsSerializer],
        request={"multipart/form-data": VideoUploadSerializer, "video/*": OpenApiTypes.BINARY},
        responses={
            202: OpenApiResponse(VideoSerializer, description="Stored and queued; `Location` is its detail URL."),
            400: OpenApiResponse(ERROR_SCHEMA, description="No video, empty, corrupt, or a bad parameter."),
            413: OpenApiResponse(ERROR_SCHEMA, description="Too many bytes, seconds or pixels: the limit is named."),
            415: OpenApiResponse(ERROR_SCHEMA, description="Not a video in a supported format."),
            503: OpenApiResponse(ERROR_SCHEMA, description="The queue is out of reach; see Retry-After."),
        },
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("video")
        if upload is None:
            raise VideoMissing(
                "No video was sent. Send it as the multipart field 'video' (curl -F video=@clip.mp4) "
                "or as the raw body with a video/* Content-Type."
            )
        # Form fields over the query string's (see DetectionListCreateView.post).
        fields = request.query_params.copy()
        fields.update(request.data)
        try:
            params = VideoParamsSerializer(data=fields)
            params.is_valid(raise_exception=True)
            video = video_create(upload=upload, **params.validated_data)
        finally:
            # Its temporary file goes now (if storage did not move it): Django closes only a form's files.
            upload.close()
        logger.info(
            "video queued",
            extra={"fields": {**video_log_fields(video), "client": request.META.get("REMOTE_ADDR")}},
        )
        body = with_base_url(VideoSerializer(video).data, request_base_url(request))
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["detail_url"]})


class VideoDetailView(APIView):
    @extend_schema(
        operation_id="videos_retrieve", summary="One video", responses={200: VideoSerializer, 404: ERROR_SCHEMA}
    )
    def get(self, request: Request, video_id: uuid.UUID) -> Response:
        video = video_get(video_id=video_id)
        if video is None:
            raise NotFound(f"No video has the id {video_id}.")
        return Response(with_base_url(VideoSerializer(video).data, request_base_url(request)))

    @extend_schema(
        operation_id="videos_destroy",
        summary="Delete a video and its files; a running one stops",
        responses={204: None, 404: ERROR_SCHEMA},
    )
    def delete(self, request: Request, video_id: uuid.UUID) -> Response:
        if not video_delete(video_id=video_id):
            raise NotFound(f"No video has the id {video_id}.")
        logger.info("video deleted", extra={"fields": {"video_id": str(video_id)}})
        return Response(status=status.HTTP_204_NO_CONTENT)
