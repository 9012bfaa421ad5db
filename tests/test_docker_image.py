"""What the Docker image promises, checked without a Docker engine: its HEALTHCHECK against the live
server, a state folder for a read-only code folder, and no secrets copied into it."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

import yaml

from tests.live_server import HOST, Server, embedded_configuration, free_port, launched_server, running_server

ROOT = Path(__file__).resolve().parent.parent
# Root writes anywhere: without these capabilities it is held to the files' permissions like any user.
WITHOUT_ROOTS_OVERRIDES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK CMD, as Docker would run it inside the container."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    command = json.loads(re.search(r"^HEALTHCHECK .*\bCMD (\[.*\])$", dockerfile, re.MULTILINE)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def run_healthcheck(port: int) -> subprocess.CompletedProcess:
    # The container's environment: PORT set, no proxy between the check and 127.0.0.1.
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    return subprocess.run(
        healthcheck_command(), env={**env, "PORT": str(port)}, capture_output=True, text=True, timeout=30
    )


def test_the_healthcheck_passes_whatever_allowed_hosts_says(tmp_path, http):
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, "ALLOWED_HOSTS": "faces.example.com"}) as server,
    ):
        result = run_healthcheck(server.port)
        ready = http.get(server.base_url + "/readyz", timeout=30)
        wrong_host = http.get(server.base_url + "/image", timeout=10)
        right_host = http.get(server.base_url + "/image", headers={"Host": "faces.example.com"}, timeout=10)
        probe_with_a_bad_host = http.get(server.base_url + "/healthz", headers={"Host": "evil.example"}, timeout=10)

    assert result.returncode == 0, result.stderr
    assert ready.status_code == 200, ready.text
    assert probe_with_a_bad_host.status_code == 200
    assert probe_with_a_bad_host.json() == {"status": "ok"}
    # Only the probes are exempt: everything else still checks the Host.
    assert wrong_host.status_code == 400
    assert right_host.status_code == 200, right_host.text


def test_the_healthcheck_fails_when_the_server_is_down():
    result = run_healthcheck(free_port())

    assert result.returncode != 0


def copy_of_the_code(destination: Path) -> Path:
    """What `COPY . .` puts in the image: the code, without what .dockerignore leaves out."""
    ignored = [line for line in (ROOT / ".dockerignore").read_text().split() if not line.startswith(("#", "!"))]
    names = {pattern.split("/")[-1].rstrip("*") or pattern for pattern in ignored}
    shutil.copytree(ROOT, destination, ignore=shutil.ignore_patterns(*names, "media"), symlinks=True)
    return destination


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def image_like_server(app: Path, state: Path) -> AbstractContextManager[Server]:
    """./entrypoint.sh in a read-only copy of the code, allowed to write only the static files and
    STATE_DIR, with the image's environment."""
    unset = {"DATABASE_URL", "MEDIA_ROOT", "STATIC_ROOT", "SECRET_KEY", "SECRET_KEY_FILE", "REDIS_URL", "TASKS_BACKEND"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(
        PYTHON=sys.executable,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        HOST=HOST,
        PORT=str(free_port()),
        STATE_DIR=str(state),
    )
    as_user = WITHOUT_ROOTS_OVERRIDES if os.geteuid() == 0 else []
    return launched_server([*as_user, "./entrypoint.sh"], cwd=app, env=env, media_root=state / "media")


def test_the_image_keeps_its_state_in_state_dir_with_a_read_only_code_folder(http, astronaut_jpeg):
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        app = copy_of_the_code(root / "app")
        (app / "staticfiles").mkdir()  # the Dockerfile makes it the server's, for collectstatic
        state = root / "data"
        state.mkdir()
        read_only(app)
        (app / "staticfiles").chmod(0o755)
        code_before = files_under(app)

        with image_like_server(app, state) as server:
            response = http.post(server.base_url + "/image", files={"image": ("a.jpg", astronaut_jpeg)}, timeout=60)

        assert response.status_code == 201, response.text + server.output()
        assert (state / "db.sqlite3").is_file()
        assert (state / ".secret_key").is_file()
        stored = [path.name for path in (state / "media" / "detections").rglob("*") if path.is_file()]
        assert sorted(stored) == ["annotated.jpg", "original.jpg"]
        written_to_code = {path for path in files_under(app) - code_before if path.parts[0] != "staticfiles"}
        assert written_to_code == set()


def test_outside_docker_the_state_stays_where_it_always_was():
    # No STATE_DIR: the database, media and secret key in the project folder, as `make run` always kept them.
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['NAME']); print(settings.MEDIA_ROOT)"
    )
    unset = {"STATE_DIR", "DATABASE_URL", "MEDIA_ROOT"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(DJANGO_SETTINGS_MODULE="facesite.settings", SECRET_KEY="test-secret")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout.split() == [str(ROOT / "db.sqlite3"), str(ROOT / "media")]


def test_secrets_in_env_files_stay_out_of_git_and_the_image():
    ignored_by_git = subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=ROOT, check=False)
    docker_ignored = (ROOT / ".dockerignore").read_text().split()

    assert ignored_by_git.returncode == 0
    assert ".env" in docker_ignored


def test_the_image_and_compose_keep_state_in_one_volume():
    dockerfile = (ROOT / "Dockerfile").read_text()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    assert re.search(r"^\s+STATE_DIR=/data", dockerfile, re.MULTILINE)
    assert re.search(r'^VOLUME \["/data"\]$', dockerfile, re.MULTILINE)
    for service in ("migrate", "web", "worker", "cameras"):
        assert services[service]["volumes"] == ["data:/data"]
