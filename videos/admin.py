from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from detection.admin import dimensions_html
from videos.models import Video


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    """A video is a record of what happened: browse, play and delete (its files go too), never edit."""

    list_display = ["thumbnail", "created_at", "status", "length", "dimensions", "megabytes", "track_count"]
    list_display_links = ["thumbnail", "created_at"]
    list_filter = ["created_at", "status", "annotate_style", "detector_profile"]
    search_fields = ["^id"]
    search_help_text = "An id, or its first characters."
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    list_per_page = 50
    record_fields = [
        "id",
        "created_at",
        "status",
        "error",
        "progress_text",
        "length",
        "dimensions",
        "fps",
        "megabytes",
        "container",
        "codec",
        "rotation",
        "has_audio",
        "track_count",
        "annotate_style",
        "detector",
        "min_confidence",
        "min_face_size",
        "detect_every",
        "processing_seconds",
        "original",
        "video",
        "faces",
    ]
    fieldsets = [(None, {"fields": ["player"]}), ("Record", {"fields": record_fields})]
    readonly_fields = ["player", *record_fields]

    @admin.display(description="Poster")
    def thumbnail(self, video: Video) -> str:
        if not video.poster:
            return video.get_status_display()  # none yet (pending, running), or never (failed)
        return format_html(
            '<img src="{}" alt="Video {}" style="max-height:80px;max-width:120px" loading="lazy">',
            video.poster.url,
            video.id,
        )

    @admin.display(description="Duration", ordering="duration")
    def length(self, video: Video) -> str:
        minutes, seconds = divmod(video.duration, 60)
        return f"{int(minutes)}:{seconds:04.1f}"

    @admin.display(description="Size")
    def dimensions(self, video: Video) -> str:
        return dimensions_html(video.width, video.height)

    @admin.display(description="MB", ordering="size")
    def megabytes(self, video: Video) -> str:
        return f"{video.size / 1_000_000:.1f}"

    @admin.display(description="Progress")
    def progress_text(self, video: Video) -> str:
        return f"{video.frames_done} of {video.frames_total} frames ({video.progress:.0%})"

    @admin.display(description="Detector", ordering="detector_profile")
    def detector(self, video: Video) -> str:
        return f"{video.detector_name} {video.detector_version} ({video.detector_profile})"

    @admin.display(description="Error")
    def error(self, video: Video) -> str:
        return f"{video.error_code}: {video.error_message}" if video.error_code else "-"

    @admin.display(description="Video")
    def player(self, video: Video) -> str:
        if video.status != Video.Status.DONE or not video.video:
            return f"No processed video: it is {video.status}."
        return format_html(
            '<video src="{}" poster="{}" controls preload="metadata" style="max-width:100%;max-height:70vh"></video>',
            video.video.url,
            video.poster.url if video.poster else "",
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # videos come from uploads

    def has_change_permission(self, request: HttpRequest, obj: Video | None = None) -> bool:
        return False  # read-only: the detail page still opens for users who may view
