from django.db import models


class ApiKey(models.Model):
    """A key for the API. Only its SHA-256 is stored: the key itself is shown once, when created."""

    name = models.CharField(max_length=100, help_text="Who or what uses this key, e.g. 'camera script'.")
    prefix = models.CharField(max_length=12, editable=False, help_text="The key's first characters, to recognise it.")
    hashed = models.CharField(max_length=64, unique=True, editable=False)
    active = models.BooleanField(default=True, help_text="Untick to revoke the key.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
