"""The one place where failures become JSON error responses.

Every error, ours or the framework's, has the shape {"error": {"code": ..., "message": ...}}, and
is JSON whatever the view renders otherwise (the YAML schema, the HTML docs) and whatever the
client's Accept header asks for.
"""

import json
import math
from collections.abc import Callable
from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from rest_framework import exceptions

from vision.errors import (
    CorruptImage,
    CorruptVideo,
    DetectionError,
    ImageEmpty,
    ImageMissing,
    ImageTooCostlyToDecode,
    ImageTooLarge,
    InvalidParameter,
    MalformedRequest,
    ProcessingFailed,
    QueueUnavailable,
    RequestTimeout,
    ServerBusy,
    UnsupportedImageFormat,
    UnsupportedVideoFormat,
    VideoCancelled,
    VideoEmpty,
    VideoMissing,
    VideoQueueFull,
    VideoTooLarge,
    WorkerLost,
)

STATUS_BY_ERROR: dict[type[DetectionError], int] = {
    ImageMissing: 400,
    ImageEmpty: 400,
    CorruptImage: 400,
    InvalidParameter: 400,
    MalformedRequest: 400,
    RequestTimeout: 408,
    ImageTooLarge: 413,
    ImageTooCostlyToDecode: 422,
    UnsupportedImageFormat: 415,
    ServerBusy: 503,
    VideoQueueFull: 503,
    QueueUnavailable: 503,
    WorkerLost: 503,  # only ever stored (queue mode), never a request's own answer
    ProcessingFailed: 500,
    VideoMissing: 400,
    VideoEmpty: 400,
    CorruptVideo: 400,
    VideoTooLarge: 413,
    UnsupportedVideoFormat: 415,
    VideoCancelled: 500,  # only ever internal (a job cancelled), never a request's answer
}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(code: str, message: str, *, status: int, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status, headers=headers)


def error_json(error: DetectionError) -> tuple[int, bytes]:
    """Status and JSON body for answers written below Django (facesite/transport.py)."""
    return STATUS_BY_ERROR[type(error)], json.dumps(error_body(error.code, error.message)).encode()


def validation_message(detail: object) -> str:
    if isinstance(detail, dict):
        return " ".join(f"{field}: {validation_message(errors)}" for field, errors in detail.items())
    if isinstance(detail, list):
        return " ".join(validation_message(item) for item in detail)
    return str(detail)


def api_exception_handler(exc: Exception, context: dict) -> JsonResponse | None:
    """DRF's EXCEPTION_HANDLER. Returning None lets DRF re-raise: a real bug, logged as a 500.

    A plain JsonResponse, not DRF's Response: DRF would render that with the view's negotiated
    renderer (YAML on /api/schema/, HTML on /api/docs/)."""
    if isinstance(exc, DetectionError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return error_response(exc.code, exc.message, status=STATUS_BY_ERROR[type(exc)], headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        return error_response(InvalidParameter.code, validation_message(exc.detail), status=400)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        video = context["request"].path.startswith("/video")
        sent = "a video/*" if video else "an image/*"
        message = (
            f"{exc.detail} Send the {'video' if video else 'photo'} as multipart/form-data in the field "
            f"'{'video' if video else 'image'}', or as the raw body with {sent} Content-Type."
        )
        return error_response("unsupported_media_type", message, status=exc.status_code)
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = "This server needs an API key: send Authorization: Bearer <key> or X-API-Key: <key>."
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, exceptions.MethodNotAllowed):
            headers["Allow"] = ", ".join(context["view"].allowed_methods)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(math.ceil(exc.wait))
        return error_response(exc.default_code, str(exc.detail), status=exc.status_code, headers=headers)
    return None


# Django's own error views (URLs outside DRF), wired as handler400/403/404/500 in facesite.urls.


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    return error_response("bad_request", "The request is malformed.", status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> JsonResponse:
    return error_response("permission_denied", "You may not do this.", status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return error_response("not_found", f"Nothing is at {request.path}.", status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response("server_error", "The server failed to handle this request; it has been logged.", status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return error_response("csrf_failed", f"CSRF verification failed: {reason}", status=403)


# Headers of a bodyless error that a client needs to act on, kept when it becomes JSON.
KEPT_ERROR_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class BodylessErrorMiddleware:
    """Errors answered without a body get the JSON error too: Django's 405 for a method a plain
    view lacks (TRACE on the page or the admin login), WhiteNoise's 405 for anything but GET and
    HEAD on a static file. Outside WhiteNoise in MIDDLEWARE, so that it sees those."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400 or (isinstance(response, HttpResponse) and response.content):
            return response
        response.close()  # a static file's response may hold it open
        if response.status_code == 405:
            code = "method_not_allowed"
            message = f"{request.method} is not allowed on {request.path}; use {response.get('Allow', 'GET')}."
        else:
            phrase = HTTPStatus(response.status_code).phrase
            code, message = phrase.lower().replace(" ", "_"), f"{phrase}."
        headers = {name: response[name] for name in KEPT_ERROR_HEADERS if response.has_header(name)}
        return error_response(code, message, status=response.status_code, headers=headers)
