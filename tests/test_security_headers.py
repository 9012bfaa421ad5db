"""Production settings: secure headers, the page's Content-Security-Policy, `check --deploy`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


def test_the_page_sends_a_content_security_policy():
    policy = Client().get("/")["Content-Security-Policy"]

    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy  # the websocket and the API, nothing else
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("path", ["/", "/image", "/healthz", "/nothing-here"])
def test_responses_carry_secure_headers(path):
    response = Client().get(path)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def check_deploy(**variables: str) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` with docker-compose.yml's web environment, plus `variables`."""
    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["environment"]
    # The compose file's values with their ${NAME:-default} defaults, as docker compose would pass them.
    compose_env = {key: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value)) for key, value in web.items()}
    env = {
        **os.environ,
        **compose_env,
        "SECRET_KEY": "a-deploy-check-key-long-and-random-enough-0123456789abcdefghij",
        **variables,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def warnings_of(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"\(security\.(W\d+)\)", result.stdout + result.stderr))


def test_check_deploy_is_clean_in_the_docker_configuration():
    result = check_deploy()

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_with_https_warns_only_about_the_hsts_choices_left_to_the_operator():
    # Subdomains and browsers' preload list are bound for as long as HSTS lasts: the README says
    # these two warnings remain until they are chosen.
    result = check_deploy(HTTPS="true")

    assert result.returncode != 0
    assert warnings_of(result) == {"W005", "W021"}, result.stdout + result.stderr


def test_check_deploy_with_https_is_clean_once_the_hsts_choices_are_made():
    result = check_deploy(HTTPS="true", SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_HSTS_PRELOAD="true")

    assert result.returncode == 0, result.stdout + result.stderr
