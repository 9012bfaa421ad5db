from django import forms
from django.contrib import admin

from live.models import Camera
from vision.video import OPTIONS_BY_SCHEME, SUPPORTED_URLS_TEXT, url_scheme


class CameraForm(forms.ModelForm):
    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if url_scheme(url) not in OPTIONS_BY_SCHEME:
            raise forms.ValidationError(f"The watcher reads {SUPPORTED_URLS_TEXT}.")
        return url


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    """The operator sets a camera up; its watcher keeps the state (read-only here)."""

    form = CameraForm
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
