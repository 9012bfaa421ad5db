#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (reads the settings: a bad environment variable stops here)
    except ImproperlyConfigured as error:
        # A setting the environment got wrong: its own message says which and why; a traceback would bury it.
        sys.exit(f"Configuration error: {error}")
    execute_from_command_line(sys.argv)
