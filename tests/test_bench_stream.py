"""The stream benchmark end to end, with tiny numbers: it starts the real server, streams a clip made
from photos, uploads beside the streams, soaks, and reports every section and target."""

import json

from django.core.management import call_command
from PIL import Image
from skimage import data


def test_the_command_streams_to_a_live_server_and_writes_json(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).save(photos / "astronaut.jpg")
    Image.fromarray(data.coffee()).save(photos / "coffee.jpg")
    output = tmp_path / "report.json"

    call_command(
        "bench_stream",
        *("--photos", str(photos), "--streams", "1", "4", "--seconds", "1"),
        *("--uploads", "2", "--upload-interval", "0.2", "--soak", "2", "--output", str(output)),
    )

    printed = capsys.readouterr().out
    assert "targets:" in printed and "soak:" in printed
    report = json.loads(output.read_text())
    assert [(level["size"], level["streams"]) for level in report["levels"]] == [
        ("640x480", 1),
        ("640x480", 4),
        ("1280x720", 1),
        ("1280x720", 4),
    ]
    for level in report["levels"]:
        assert level["server_cpu"] > 0
        for stream in level["per_stream"]:
            assert stream["fps"] > 0 and stream["errors"] == 0 and stream["dropped"] == 0
            assert stream["round_trip_ms"]["p50"] >= stream["detect_ms"]["p50"] > 0
    for phase in ("idle", "beside_four_streams"):
        uploads = report["uploads"][phase]
        assert uploads["created"] == uploads["broadcasts_arrived"] == 2
    assert len(report["uploads"]["beside_four_streams"]["streams"]) == 4
    assert report["soak"]["rss_mb"] and report["soak"]["growth_mb"] is not None
    assert {target["name"] for target in report["targets"]} >= {
        "one 640x480 stream: frames per second",
        "four streams: slowest stream's fps",
        "soak of two streams: RSS growth (MiB)",
    }
