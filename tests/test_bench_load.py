"""The load benchmark end to end, with tiny numbers: it starts the real server and reports every section."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image
from skimage import data

from detection.loadbench import (
    BareBroadcaster,
    Listeners,
    Photo,
    Upload,
    delivery_times,
    paced_uploads,
    running_bare_broadcaster,
    targets,
    uploaders,
    wait_for_deliveries,
)

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


def test_the_bare_broadcaster_sends_each_listener_a_message_of_the_asked_size_with_the_uploads_id():
    async def upload_and_listen(bare: BareBroadcaster) -> tuple[Listeners, list[Upload]]:
        listeners = Listeners()
        await listeners.grow_to(bare.ws_url, 3)
        with uploaders() as pool:
            uploads = await paced_uploads(pool, bare.base_url, Photo("p.jpg", b"x" * 100_000, "image/jpeg"), 2, 0.05)
        await wait_for_deliveries(listeners, 0, uploads)
        await listeners.close()
        return listeners, uploads

    with running_bare_broadcaster(message_bytes=700) as bare:
        listeners, uploads = asyncio.run(upload_and_listen(bare))

    assert [upload.status for upload in uploads] == [201, 201]
    ids = {upload.detection_id for upload in uploads}
    received = [(client, str(json.loads(raw)["id"])) for _, client, raw in listeners.arrivals]
    assert sorted(received) == sorted((client, detection_id) for client in range(3) for detection_id in ids)
    assert all(len(raw) == 700 for _, _, raw in listeners.arrivals)
    assert listeners.dropped() == 3  # closed at the end


def message(detection_id: str) -> bytes:
    return json.dumps({"type": "detection.created", "id": detection_id}).encode()


def test_delivery_times_count_each_clients_first_message_and_the_last_client_per_upload():
    sent_at = {"a": 10.0, "b": 10.5}
    arrivals = [
        (10.1, 0, message("a")),
        (10.3, 1, message("a")),
        (10.4, 1, message("a")),  # a second copy to the same client: not a delivery
        (10.2, 0, message("other")),  # not one of these uploads
        (10.6, 0, message("b")),  # client 1 never receives b
    ]

    times = delivery_times(sent_at, arrivals, clients=2)

    assert (times["expected"], times["delivered"], times["uploads_everyone_received"]) == (4, 3, 1)
    assert times["ms"]["max"] == pytest.approx(300) and times["ms"]["p50"] == pytest.approx(100)
    # Per upload, its last delivery, whether or not everyone received it: a after 300 ms, b after 100 ms.
    assert times["last_client_ms"]["p50"] == pytest.approx(100) and times["last_client_ms"]["max"] == pytest.approx(300)


def broadcast_level(listeners: int, last_p99: float, answer_p50: float, delivered: int = 20) -> dict:
    return {
        "listeners": listeners,
        "delivered": delivered * listeners,
        "expected": 20 * listeners,
        "last_client_ms": {"p99": last_p99},
        "answer_ms": {"p50": answer_p50},
    }


def test_targets_set_this_servers_broadcast_against_its_own_upload_and_the_bare_broadcaster():
    report = {
        "server": {"workers": 1},
        "broadcast": {
            "idle": {"answer_ms": {"p50": 100.0}},
            "levels": [broadcast_level(1000, 249.0, 121.0), broadcast_level(5000, 900.0, 130.0, delivered=19)],
        },
        "bare_broadcast": {"idle": {}, "levels": [broadcast_level(1000, 100.0, 5.0)]},
        "throughput": [{"clients": 16, "parallel_ratio": 0.62}],
    }

    found = targets(report)

    assert [(target["measured"], target["limit"], target["holds"]) for target in found] == [
        (249.0, 250.0, True),  # 100 + 100 + 50
        (900.0, 1000, False),  # in time, but not everyone received every upload
        (121.0, 120.0, False),
        (0.62, 0.85, False),
    ]


def test_targets_not_measured_in_a_run_say_so():
    report = {
        "server": {"workers": 1},
        "broadcast": {"idle": None, "levels": []},
        "bare_broadcast": None,
        "throughput": [],
    }

    assert [target["holds"] for target in targets(report)] == [None] * 4
