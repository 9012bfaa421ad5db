from django.contrib import admin, messages
from django.http import HttpRequest

from access.models import ApiKey
from access.services import api_key_issue


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "active", "created_at", "last_used_at"]
    list_filter = ["active"]
    search_fields = ["name", "prefix"]
    fields = ["name", "active", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        key = None if change else api_key_issue(obj)
        super().save_model(request, obj, form, change)
        if key:
            messages.warning(
                request, f"The key for {obj.name} is {key} — copy it now: it is not stored and cannot be shown again."
            )
