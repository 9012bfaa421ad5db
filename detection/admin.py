from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from detection.models import Detection


def dimensions_html(width: int, height: int) -> str:
    """ "640 x 480" kept on one line in the admin's lists."""
    return format_html('<span style="white-space:nowrap">{}&thinsp;&times;&thinsp;{}</span>', width, height)


class FaceCountFilter(admin.SimpleListFilter):
    title = "faces"
    parameter_name = "faces"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("none", "None"), ("one", "One"), ("several", "Several")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Detection]) -> QuerySet[Detection]:
        match self.value():
            case "none":
                return queryset.filter(face_count=0)
            case "one":
                return queryset.filter(face_count=1)
            case "several":
                return queryset.filter(face_count__gt=1)
        return queryset


@admin.register(Detection)
class DetectionAdmin(admin.ModelAdmin):
    """A detection is a record of what happened: browse and delete, never edit."""

    # What fits a laptop screen; profile and style are filters and on the detail page.
    list_display = ["thumbnail", "created_at", "status", "face_count", "size"]
    list_display_links = ["thumbnail", "created_at"]
    list_filter = ["created_at", "status", FaceCountFilter, "source", "camera", "detector_profile", "annotate_style"]
    search_fields = ["^id"]  # the whole id or its first characters
    search_help_text = "An id, or its first characters."
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    list_per_page = 50
    record_fields = [
        "id",
        "created_at",
        "status",
        "error",
        "source",
        "camera",
        "size",
        "face_count",
        "detector",
        "annotate_style",
        "min_confidence",
        "min_face_size",
        "max_faces",
        "processing_ms",
        "original",
        "annotated",
    ]
    fieldsets = [(None, {"fields": ["images", "faces_table"]}), ("Record", {"fields": record_fields})]
    readonly_fields = ["images", "faces_table", *record_fields]

    @admin.display(description="Annotated")
    def thumbnail(self, detection: Detection) -> str:
        if not detection.annotated:
            return detection.get_status_display()  # none yet (pending), or never (failed)
        return format_html(
            '<img src="{}" alt="Detection {}" style="max-height:80px;max-width:120px" loading="lazy">',
            detection.annotated.url,
            detection.id,
        )

    @admin.display(description="Size")
    def size(self, detection: Detection) -> str:
        if detection.width is None:
            return "-"
        return dimensions_html(detection.width, detection.height)

    @admin.display(description="Detector", ordering="detector_profile")
    def detector(self, detection: Detection) -> str:
        return f"{detection.detector_name} {detection.detector_version} ({detection.detector_profile})"

    @admin.display(description="Images")
    def images(self, detection: Detection) -> str:
        figure = (
            '<figure style="margin:0;flex:1 1 16rem;max-width:calc(50% - 0.5rem);min-width:14rem">'
            '<a href="{0}"><img src="{0}" alt="{1}" style="width:100%;height:auto"></a>'
            "<figcaption>{1}</figcaption></figure>"
        )
        images = [(detection.original, "Original"), (detection.annotated, "Annotated")]
        figures = format_html_join("", figure, [(image.url, caption) for image, caption in images if image])
        return format_html('<div style="display:flex;flex-wrap:wrap;gap:1rem">{}</div>', figures)

    @admin.display(description="Error")
    def error(self, detection: Detection) -> str:
        return f"{detection.error_code}: {detection.error_message}" if detection.error_code else "-"

    @admin.display(description="Faces")
    def faces_table(self, detection: Detection) -> str:
        if detection.status != Detection.Status.DONE:
            return f"None known: the detection is {detection.status}."
        if not detection.faces:
            return "No faces found."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}, {}</td><td>{} x {}</td></tr>",
            (
                (
                    number,
                    f"{face['confidence']:.2f}",
                    face["box"]["x"],
                    face["box"]["y"],
                    face["box"]["width"],
                    face["box"]["height"],
                )
                for number, face in enumerate(detection.faces, start=1)
            ),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>Confidence</th><th>Top left (x, y)</th><th>Width x height</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # detections come from uploads

    def has_change_permission(self, request: HttpRequest, obj: Detection | None = None) -> bool:
        return False  # read-only: the detail page still opens for users who may view
