from django.contrib import admin
from django.utils.html import format_html

from detection.models import Detection


@admin.register(Detection)
class DetectionAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "id", "face_count", "width", "height", "created_at", "detector_name"]
    list_filter = ["created_at", "face_count"]
    search_fields = ["id"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Detection._meta.fields]

    @admin.display(description="Annotated")
    def thumbnail(self, detection: Detection) -> str:
        return format_html(
            '<img src="{}" alt="Detection {}" style="max-height:80px;max-width:120px" loading="lazy">',
            detection.annotated.url,
            detection.id,
        )

    def has_add_permission(self, request) -> bool:
        return False  # detections come from uploads, not forms
