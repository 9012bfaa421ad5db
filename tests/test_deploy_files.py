"""The Docker files. No Docker engine runs on CI machines, so these check what can be checked
without one; tests/test_live_server.py runs the same entrypoint script outside a container."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_web_service_on_8282_with_redis_and_postgres():
    services = compose()["services"]

    assert set(services) == {"web", "redis", "postgres"}
    web = services["web"]
    assert web["ports"] == ["${PORT:-8282}:8282"]
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "media:/app/media" in web["volumes"]
    assert set(web["depends_on"]) == {"redis", "postgres"}


def test_compose_volumes_are_declared():
    data = compose()
    used = {volume.split(":")[0] for service in data["services"].values() for volume in service.get("volumes", [])}

    assert used == set(data["volumes"])


def test_dockerfile_runs_the_entrypoint_as_a_user_on_8282():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER faces$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8282$", dockerfile, re.MULTILINE)
    assert "/healthz" in dockerfile
    assert re.search(r'^ENTRYPOINT \["\./entrypoint\.sh"\]$', dockerfile, re.MULTILINE)
    assert (ROOT / "entrypoint.sh").stat().st_mode & 0o111


def test_the_image_does_not_take_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()

    for path in [".venv", "db.sqlite3", ".secret_key", "media/*", ".git"]:
        assert path in ignored
