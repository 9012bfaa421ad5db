from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live video: camera streams sent over /stream, and the network cameras the server watches."""

    name = "live"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Live cameras"
