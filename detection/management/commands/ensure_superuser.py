import os
import sys

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create the admin user from DJANGO_SUPERUSER_USERNAME/_PASSWORD/_EMAIL unless it exists; "
        "without them, ask on the terminal."
    )

    def handle(self, *args, **options) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not username or not password:
            if sys.stdin.isatty():
                call_command("createsuperuser")  # asks for the name and the password
                return
            # Django's createsuperuser would skip silently and succeed: a script would believe it done.
            raise CommandError(
                "Set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD (and optionally _EMAIL), e.g. "
                "DJANGO_SUPERUSER_USERNAME=admin DJANGO_SUPERUSER_PASSWORD=... make superuser; without them "
                "the name and password are asked on a terminal, and there is none here."
            )
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin user {username} already exists; left as it is.")
            return
        users.create_superuser(username=username, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password=password)
        self.stdout.write(f"Created admin user {username}.")
