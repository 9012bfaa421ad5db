import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def test_it_creates_the_admin_user_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "operator")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long pass phrase")

    call_command("ensure_superuser")

    user = get_user_model().objects.get(username="operator")
    assert user.is_superuser and user.check_password("a long pass phrase")


def test_it_leaves_an_existing_user_alone(monkeypatch):
    get_user_model().objects.create_superuser("operator", "", "the original password")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "operator")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a new password")

    call_command("ensure_superuser")

    assert get_user_model().objects.get(username="operator").check_password("the original password")


def test_it_explains_what_is_missing(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)

    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_USERNAME"):
        call_command("ensure_superuser")
