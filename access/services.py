"""Creating and checking API keys."""

import hashlib
import secrets

from django.conf import settings
from django.utils import timezone

from access.models import ApiKey

KEY_PREFIX = "fk_"


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens: a fast hash is enough, no password stretching needed.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_issue(api_key: ApiKey) -> str:
    """Give a new, unsaved key its secret. Returns the plaintext, which is stored nowhere."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key.prefix, api_key.hashed = key[:10], hash_key(key)
    return key


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    api_key = ApiKey(name=name)
    key = api_key_issue(api_key)
    api_key.save()
    return api_key, key


def keys_configured() -> bool:
    """Without any key (environment or admin), the API stays open to everyone."""
    return bool(settings.API_KEYS) or ApiKey.objects.filter(active=True).exists()


def api_key_check(*, key: str) -> str | None:
    """The identity behind a valid key ("env:<prefix>" or "key:<id>"), or None."""
    hashed = hash_key(key)
    if any(secrets.compare_digest(hashed, hash_key(configured)) for configured in settings.API_KEYS):
        return f"env:{key[:6]}"
    api_key = ApiKey.objects.filter(hashed=hashed, active=True).first()
    if api_key is None:
        return None
    ApiKey.objects.filter(id=api_key.id).update(last_used_at=timezone.now())
    return f"key:{api_key.id}"
