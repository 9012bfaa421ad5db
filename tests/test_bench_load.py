"""The load benchmark end to end, with tiny numbers: it starts the real server and reports every section."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent


def test_the_command_measures_a_live_server_and_writes_json(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).save(photos / "astronaut.jpg")
    Image.fromarray(data.coffee()).save(photos / "coffee.png")
    output = tmp_path / "report.json"

    call_command(
        "bench_load",
        *("--photos", str(photos), "--clients", "1", "2", "--uploads", "2"),
        *("--websockets", "5", "--fanout-uploads", "2", "--output", str(output)),
        *("--broadcast", "3", "5", "--broadcast-uploads", "2", "--broadcast-interval", "0.1"),
    )

    printed = capsys.readouterr().out
    assert "Uploads" in printed and "Fan-out" in printed and "Memory" in printed
    report = json.loads(output.read_text())
    assert [level["clients"] for level in report["throughput"]] == [1, 2]
    for level in report["throughput"]:
        assert (level["ok"], level["errors"]) == (2, {})
        assert level["per_second"] > 0 and level["floor"]["per_second"] > 0 and level["ratio"] > 0
        assert level["parallel_floor"]["threads"] == report["server"]["detection_workers"]
        assert level["parallel_ratio"] > 0 and level["server_cpu_s"] > 0
    (fanout,) = report["fanout"]
    assert fanout["clients"] == 5
    assert fanout["expected"] == 10 and fanout["delivered"] == 10
    assert fanout["ms"]["max"] > 0
    phases = [snapshot["phase"] for snapshot in report["memory"]]
    assert phases == ["at rest", "after uploads", "with 3 websockets", "with 5 websockets"]
    assert report["options"]["broadcast_photo"] == "astronaut-512x512.jpg"
    for broadcasts in (report["broadcast"], report["bare_broadcast"]):
        assert broadcasts["idle"]["clients"] == 0 and broadcasts["idle"]["answer_ms"]["p50"] > 0
        assert [level["listeners"] for level in broadcasts["levels"]] == [3, 5]
        for level in broadcasts["levels"]:
            assert level["delivered"] == level["expected"] == 2 * level["listeners"]
            assert level["uploads_everyone_received"] == 2 and level["last_client_ms"]["max"] > 0
    # The yardstick sends messages as long as ours.
    assert report["bare_broadcast"]["levels"][0]["message_bytes"] == report["broadcast"]["levels"][0]["message_bytes"]
    assert "Broadcast" in printed and "Targets" in printed
    assert all(process["rss_mb"] > 0 for snapshot in report["memory"] for process in snapshot["processes"])


@pytest.mark.parametrize("module", ["requests", "websockets"])
def test_without_the_development_dependencies_it_says_which_to_install(module):
    # As in an environment with requirements.txt only: importing the module fails.
    script = (
        f"import runpy, sys; sys.modules[{module!r}] = None; "
        "sys.argv = ['manage.py', 'bench_load', '--photos', 'nowhere']; "
        "runpy.run_path('manage.py', run_name='__main__')"
    )
    env = {**os.environ, "SECRET_KEY": "test-secret"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"bench_load needs the development dependencies, and {module} is missing" in result.stderr
    assert "requirements-dev.txt" in result.stderr
