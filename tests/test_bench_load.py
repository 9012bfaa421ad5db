"""The load benchmark end to end, with tiny numbers: it starts the real server and reports every section."""

import json

from django.core.management import call_command
from PIL import Image
from skimage import data


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
    assert phases == ["at rest", "after uploads", "after fan-out to 5"]
    assert all(process["rss_mb"] > 0 for snapshot in report["memory"] for process in snapshot["processes"])
