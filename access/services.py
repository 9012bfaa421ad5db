"""Creating and checking API keys."""

import hashlib
import secrets

from django.conf import settings
from django.utils import timezone

from access.models import ApiKey
from access.throttling import auth_failure_record

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


def api_key_check(*, key: str, address: str) -> str | None:
    """The identity behind a valid key, or None; a wrong key counts against `address` (see
    access.throttling.auth_failures_wait). Identities name the whole key: "env:<its hash>" for
    API_KEYS (keys that start alike are still apart), "key:<id>" for the admin's."""
    hashed = hash_key(key)
    if any(secrets.compare_digest(hashed, hash_key(configured)) for configured in settings.API_KEYS):
        return f"env:{hashed[:32]}"
    api_key = ApiKey.objects.filter(hashed=hashed, active=True).first()
    if api_key is None:
        auth_failure_record(address=address)
        return None
    ApiKey.objects.filter(id=api_key.id).update(last_used_at=timezone.now())
    return f"key:{api_key.id}"
