"""Schemathesis against the live server's own OpenAPI schema: thousands of generated requests
(valid, edge-case and malformed), and not one may get a 5xx."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import embedded_configuration, running_server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


# /video's four operations doubled its run: 112 s on this 2-core machine under other load, against
# the suite's 120 s default.
@pytest.mark.timeout(300)
def test_no_generated_request_gets_a_server_error(tmp_path):
    # Rate limits off, so the generated requests reach the code behind them instead of a 429.
    unthrottled = {"THROTTLE_UPLOADS": "", "THROTTLE_READS": ""}
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **unthrottled}) as server,
    ):
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.base_url}/api/schema/",
                "--url",
                server.base_url,
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "30",
                "--seed",
                "1",  # reproducible in CI; run it by hand without --seed to explore further
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:] + server.output()[-3000:]
    # Every generated case passed. Warnings may stand beside them (random ids answered 404, random
    # bytes refused as videos): they say the data was refused, which is the point.
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 500, result.stdout[-5000:]
    assert "failed" not in result.stdout.lower().split("test cases:")[-1], result.stdout[-5000:]
