"""The Docker files. No Docker engine runs on CI machines, so these check what can be checked
without one; tests/test_live_server.py runs the same entrypoint script outside a container."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_replicas_behind_nginx_on_8282_with_redis_and_postgres():
    services = compose()["services"]

    assert set(services) == {"migrate", "web", "worker", "cameras", "nginx", "redis", "postgres"}
    web = services["web"]
    assert "ports" not in web  # reached only through nginx
    assert int(web["deploy"]["replicas"].removeprefix("${WEB_REPLICAS:-").removesuffix("}")) >= 2
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"] == "redis://redis:6379/0"  # replicas must share a layer
    assert web["environment"]["MIGRATE"] == "false"
    assert web["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "data:/data" in web["volumes"]  # every replica sees every image
    assert services["migrate"]["entrypoint"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["nginx"]["ports"] == ["${PORT:-8282}:8282"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]


def test_compose_queues_uploads_for_workers_that_share_the_web_services_data():
    services = compose()["services"]
    web, worker = services["web"], services["worker"]

    assert web["environment"]["TASKS_BACKEND"] == "rq"
    assert worker["command"] == ["worker"]  # ./entrypoint.sh worker, from the same image
    assert worker["build"] == web["build"]
    for name in ("DATABASE_URL", "REDIS_URL", "TASKS_BACKEND"):
        assert worker["environment"][name] == web["environment"][name]
    assert "data:/data" in worker["volumes"]  # it reads the originals and writes the copies
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "ports" not in worker


def test_compose_watches_the_cameras_with_the_web_services_settings():
    services = compose()["services"]
    web, cameras = services["web"], services["cameras"]

    assert cameras["command"] == ["cameras"]  # ./entrypoint.sh cameras, from the same image
    assert cameras["build"] == web["build"]
    for name in ("DATABASE_URL", "REDIS_URL", "TASKS_BACKEND"):  # its detections queue for the workers
        assert cameras["environment"][name] == web["environment"][name]
    assert "deploy" not in cameras  # one replica: each would watch every camera
    assert "ports" not in cameras


def test_nginx_passes_websockets_and_caps_bodies():
    config = (ROOT / "deploy" / "nginx.conf").read_text()

    assert "listen 8282;" in config
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert re.search(r"client_max_body_size \d+m;", config)


def test_nginx_asks_dockers_dns_again_for_the_replicas():
    # A name in an upstream block or a literal proxy_pass is resolved once, at start: replicas added
    # or restarted later would never be reached. A variable is resolved by the resolver, per `valid`.
    config = (ROOT / "deploy" / "nginx.conf").read_text()

    assert re.search(r"^\s*resolver 127\.0\.0\.11 valid=\d+s", config, re.MULTILINE)
    assert "set $web http://web:8282;" in config
    proxy_passes = re.findall(r"proxy_pass (\S+);", config)
    assert proxy_passes and set(proxy_passes) == {"$web"}
    assert not re.search(r"^\s*upstream ", config, re.MULTILINE)


def test_compose_volumes_are_declared():
    data = compose()
    mounts = [volume.split(":")[0] for service in data["services"].values() for volume in service.get("volumes", [])]
    used = {mount for mount in mounts if not mount.startswith((".", "/"))}  # named volumes, not bind mounts

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
