"""An upload whose processing fails for a reason no client caused (here the disk refusing the
annotated copy, as a full disk or a quota would): in embedded mode the answer is a JSON 500
server_error, nothing of the upload is kept, the failure is logged, and the server goes on."""

import resource

import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode
from tests.live_server import embedded_configuration, running_server

# Larger than what the server writes while the test runs (its log, SQLite's pages, the uploads as
# they arrive and are stored), smaller than the annotated copy of the checkerboard.
FILE_SIZE_LIMIT = 1_000_000


@pytest.fixture(scope="module")
def checkerboard_png() -> bytes:
    """~13 KB as a PNG, ~1.3 MB as the annotated JPEG: a one-pixel checkerboard is all high frequencies.
    (4 megapixels: more would be refused before decoding, as too many pixels for its bytes.)"""
    cells = (np.indices((2000, 2000)).sum(axis=0) % 2 * 255).astype(np.uint8)
    return encode(Image.fromarray(np.stack([cells, 255 - cells, cells], axis=-1)), "PNG")


def test_a_failure_while_detecting_is_a_500_that_keeps_nothing(tmp_path, http, checkerboard_png, astronaut_jpeg):
    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
        # Python ignores SIGXFSZ: past the limit a write fails with EFBIG, as on a full disk.
        _, hard = resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, hard))

        failed = http.post(server.base_url + "/image", files={"image": ("board.png", checkerboard_png)}, timeout=60)
        listing = http.get(server.base_url + "/image", timeout=10).json()
        stored = sorted(path.name for path in server.media_root.rglob("*") if path.is_file())
        afterwards = http.post(server.base_url + "/image", files={"image": ("a.jpg", astronaut_jpeg)}, timeout=60)

    assert failed.status_code == 500, failed.text
    assert failed.headers["Content-Type"] == "application/json"
    assert failed.json()["error"]["code"] == "server_error"
    assert listing["count"] == 0
    assert stored == []  # no original, and no part of the annotated copy whose write failed
    assert "failed unexpectedly" in server.output()
    assert afterwards.status_code == 201, afterwards.text
