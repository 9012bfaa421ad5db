"""A setting the environment gets wrong stops every command with one clear line naming it, never a
traceback, and never a value silently taken for another."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facesite.env import env_bool, env_float, env_int
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent

BAD_SETTINGS = {
    "RETENTION_DAYS=abc": ({"RETENTION_DAYS": "abc"}, "RETENTION_DAYS must be a whole number"),
    "RETENTION_DAYS=-1": ({"RETENTION_DAYS": "-1"}, "RETENTION_DAYS must be 0 or more"),
    "RETENTION_DAYS=1.5": ({"RETENTION_DAYS": "1.5"}, "RETENTION_DAYS must be a whole number"),
    "MAX_UPLOAD_BYTES=20MB": ({"MAX_UPLOAD_BYTES": "20MB"}, "MAX_UPLOAD_BYTES must be a whole number"),
    "DEBUG=maybe": ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
    "HTTPS=ture": ({"HTTPS": "ture"}, "HTTPS must be true or false"),
    "DETECTOR_MIN_CONFIDENCE=high": ({"DETECTOR_MIN_CONFIDENCE": "high"}, "DETECTOR_MIN_CONFIDENCE must be a number"),
    "DETECTOR_PROFILE=best": ({"DETECTOR_PROFILE": "best"}, "DETECTOR_PROFILE must be one of fast, balanced, accurate"),
    "DETECTOR_ENGINE=int4": ({"DETECTOR_ENGINE": "int4"}, "DETECTOR_ENGINE must be one of float, int8"),
    "ANONYMISE_PROFILE=slow": ({"ANONYMISE_PROFILE": "slow"}, "ANONYMISE_PROFILE must be one of fast, balanced"),
    "VIDEO_DETECT_EVERY=11": ({"VIDEO_DETECT_EVERY": "11"}, "VIDEO_DETECT_EVERY must be 10 or less"),
    "VIDEO_DETECT_EVERY=0": ({"VIDEO_DETECT_EVERY": "0"}, "VIDEO_DETECT_EVERY must be 1 or more"),
    "rq without REDIS_URL": ({"TASKS_BACKEND": "rq"}, "TASKS_BACKEND=rq needs REDIS_URL"),
    "unknown TASKS_BACKEND": ({"TASKS_BACKEND": "celery"}, "TASKS_BACKEND must be one of"),
}


# The launcher's own (facesite/serve.py), read when ./entrypoint.sh starts it.
BAD_LAUNCHER_SETTINGS = {
    "WORKERS=two": ({"WORKERS": "two"}, "WORKERS must be a whole number"),
    "WORKERS=0": ({"WORKERS": "0"}, "WORKERS must be 1 or more"),
    "PORT=http": ({"PORT": "http"}, "PORT must be a whole number"),
    "PROXY_HEADERS=maybe": ({"PROXY_HEADERS": "maybe"}, "PROXY_HEADERS must be true or false"),
}


def environment(variables: dict[str, str]) -> dict[str, str]:
    # Nothing else set: each run fails on its one bad variable before any database or Redis is touched.
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "TASKS_BACKEND"}}
    return {**env, "SECRET_KEY": "test-secret", **variables}


def assert_one_line_naming(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Configuration error: ")
    assert message in lines[0]


@pytest.mark.parametrize("variables, message", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_manage_py_names_the_bad_setting_in_one_line(variables, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment(variables),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert_one_line_naming(result, message)


@pytest.mark.parametrize("word, value", [("true", True), ("YES", True), ("1", True), ("off", False), ("0", False)])
def test_booleans_take_the_usual_words(monkeypatch, word, value):
    monkeypatch.setenv("SOME_FLAG", word)

    assert env_bool("SOME_FLAG") is value


def test_unset_or_empty_settings_take_their_defaults(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "")
    monkeypatch.delenv("SOME_FLAG", raising=False)

    assert env_int("SOME_NUMBER", 7, minimum=0) == 7
    assert env_float("SOME_NUMBER", 0.5) == 0.5
    assert env_bool("SOME_FLAG", True) is True


@pytest.mark.parametrize("variables, message", BAD_LAUNCHER_SETTINGS.values(), ids=BAD_LAUNCHER_SETTINGS.keys())
def test_the_launcher_names_the_bad_setting_in_one_line(variables, message):
    result = subprocess.run(
        [sys.executable, "-m", "facesite.serve"],
        cwd=ROOT,
        env=environment({"HOST": "127.0.0.1", "PORT": str(free_port()), **variables}),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert_one_line_naming(result, message)
