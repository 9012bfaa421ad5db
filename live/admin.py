from django.contrib import admin

from live.models import Camera


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    """The operator sets a camera up; its watcher keeps the state (read-only here)."""

    list_display = ["name", "enabled", "state", "last_frame_at", "sampled_fps", "last_error"]
    list_filter = ["enabled", "state"]
    search_fields = ["name"]
    state_fields = ["state", "state_changed_at", "last_frame_at", "sampled_fps", "last_error", "watched_by"]
    fieldsets = [
        (None, {"fields": ["name", "url", "enabled"]}),
        ("Sampling and detection", {"fields": ["sample_fps", "profile", "min_confidence", "min_face_size"]}),
        ("When faces appear", {"fields": ["cooldown_seconds", "store_snapshots", "annotate_style"]}),
        ("State", {"fields": state_fields}),
    ]
    readonly_fields = state_fields
