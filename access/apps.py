from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Who may use the API: API keys, and how often (rate limits)."""

    name = "access"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "API access"

    def ready(self) -> None:
        from access import schema  # noqa: F401  (registers the OpenAPI description of API keys)
