"""The Makefile's helper targets, run with make as users run them (the environment already installed)."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make(target: str, tmp_path: Path, *variables: str, **environment: str) -> subprocess.CompletedProcess:
    """`make target` without a terminal, on a database of its own, with this Python's environment
    taken as installed (no venv built, no pip run)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_SUPERUSER_", "MAKE"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", SECRET_KEY="test-secret", **environment)
    env.pop("TASKS_BACKEND", None)
    installed = ["-o", ".venv/.runtime-installed", "-o", ".venv/.dev-installed", f"BIN={Path(sys.executable).parent}"]
    return subprocess.run(
        ["make", "--no-print-directory", *installed, target, *variables],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def superusers(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        return [name for (name,) in db.execute("SELECT username FROM auth_user WHERE is_superuser")]


def test_make_superuser_without_a_terminal_fails_and_says_how_to_script_it(tmp_path):
    result = make("superuser", tmp_path)

    assert result.returncode != 0
    assert "DJANGO_SUPERUSER_USERNAME" in result.stderr and "DJANGO_SUPERUSER_PASSWORD" in result.stderr
    assert superusers(tmp_path) == []


def test_make_superuser_takes_the_user_from_the_environment(tmp_path):
    result = make(
        "superuser", tmp_path, DJANGO_SUPERUSER_USERNAME="operator", DJANGO_SUPERUSER_PASSWORD="a long pass phrase"
    )

    assert result.returncode == 0, result.stderr
    assert superusers(tmp_path) == ["operator"]


@pytest.mark.parametrize(
    "target, commands",
    [
        ("bench-detector", ["bench_detector"]),
        ("bench-load", ["bench_load"]),
        ("bench-cameras", ["bench_cameras"]),
        ("bench-stream", ["bench_stream", "bench_cameras"]),  # the streams' ARGS, the cameras' CAMERA_ARGS
    ],
)
def test_the_benchmark_targets_pass_args_to_their_command(tmp_path, target, commands):
    result = make(target, tmp_path, "ARGS=--help", "CAMERA_ARGS=--help")

    assert result.returncode == 0, result.stderr
    for command in commands:
        assert f"usage: manage.py {command}" in result.stdout
