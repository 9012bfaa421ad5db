import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from skimage import data

from facesite.layers import channel_layers

# Redis for the channel-layer tests: a database of its own, so a developer's data is safe.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The WIDER FACE sample (evaluation-only licence: read from beside the repo, never copied into it).
# ../shared/faces/dev beside the repository, or DATASET (make mutation's copy of the code is a level deeper).
DEV_SET = Path(os.environ.get("DATASET") or Path(__file__).resolve().parents[2] / "shared" / "faces" / "dev")
# A group photo of ~100 people, some small and far away on a balcony.
CROWD_PHOTO = "12_Group_Large_Group_12_Group_Large_Group_12_315.jpg"


def require_dev_set() -> Path:
    """The sample's folder; CI must have it, elsewhere its tests skip without it."""
    if not (DEV_SET / "gt.json").exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the WIDER FACE sample at {DEV_SET}")
        pytest.skip(f"no WIDER FACE sample at {DEV_SET}")
    return DEV_SET


@pytest.fixture(scope="session")
def crowd_jpeg() -> bytes:
    return (require_dev_set() / "images" / CROWD_PHOTO).read_bytes()


# A hand-labelled box around the astronaut's face in skimage's 512x512 astronaut photo.
ASTRONAUT_FACE = (175, 55, 100, 130)  # x, y, width, height


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def faces_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera's H.264 clip of a dev photo with two faces (tests/cameras.py)."""
    import cv2

    from tests.cameras import FACES_PHOTO, clip_of

    photo = cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))
    return clip_of(photo, tmp_path_factory.mktemp("clips") / "faces.mp4")


@pytest.fixture(scope="session")
def coffee_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera's H.264 clip of a real photo without a face."""
    import cv2

    from tests.cameras import clip_of

    return clip_of(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), tmp_path_factory.mktemp("clips") / "coffee.mp4")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Each test stores its uploads in a folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut: Image.Image) -> bytes:
    return encode(astronaut, "JPEG", quality=92)


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    """A real photo without a face."""
    return encode(Image.fromarray(data.coffee()), "PNG")


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in media_root.rglob("*") if path.is_file()) if media_root.exists() else []


def overlap(box: dict, reference: tuple[int, int, int, int]) -> float:
    """Intersection over union of a response box and an (x, y, w, h) tuple."""
    x, y, width, height = reference
    left, top = max(box["x"], x), max(box["y"], y)
    right = min(box["x"] + box["width"], x + width)
    bottom = min(box["y"] + box["height"], y + height)
    intersection = max(0, right - left) * max(0, bottom - top)
    return intersection / (box["width"] * box["height"] + width * height - intersection)


@pytest.fixture
def redis_url() -> str:
    """The test Redis; required in CI, where a missing Redis must fail the run rather than skip."""
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI and is not reachable at {TEST_REDIS_URL}: {error}")
        pytest.skip(f"no Redis at {TEST_REDIS_URL}")
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def two_faces_jpeg(astronaut: Image.Image) -> bytes:
    """The astronaut (face ~90 px) beside the cameraman scaled down (face ~40 px)."""
    pair = Image.new("RGB", (768, 512), "white")
    pair.paste(astronaut, (0, 0))
    pair.paste(Image.fromarray(data.camera()).convert("RGB").resize((256, 256)), (512, 0))
    return encode(pair, "JPEG", quality=92)


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Rate-limit counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """An HTTP client for the live servers of tests/live_server.py."""
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment must not sit between us and 127.0.0.1
    yield session
    session.close()


# Mutation testing (`make mutation`): the live servers test mutants and record which functions each
# test runs, as the tests' own process does (tests/mutation/sitecustomize.py).
MUTATION_HITS_FILE = Path(tempfile.gettempdir()) / f"mutation-hits-{os.getpid()}"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MUTANT_UNDER_TEST"):
        os.environ["MUTATION_HITS_FILE"] = str(MUTATION_HITS_FILE)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(__file__).parent / "mutation"), os.environ.get("PYTHONPATH")])
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Checking a mutant stops at the first failing test: quickest test files first (mutmut's timings).
    timings = Path("mutmut-stats.json")
    if not os.environ.get("MUTANT_UNDER_TEST") or not timings.exists():
        return
    durations = json.loads(timings.read_text())["duration_by_test"]
    per_file: dict[str, float] = {}
    for item in items:
        per_file[item.path.name] = per_file.get(item.path.name, 0) + durations.get(item.nodeid, 0)
    items.sort(key=lambda item: per_file[item.path.name])  # stable: a file's tests stay together, in order


def pytest_runtest_logfinish(nodeid: str) -> None:
    # After the test's teardown: a server stopped there has written what its shutdown ran.
    if os.environ.get("MUTANT_UNDER_TEST") != "stats" or not MUTATION_HITS_FILE.exists():
        return
    from mutmut.state import state

    taken = MUTATION_HITS_FILE.with_suffix(".taken")
    MUTATION_HITS_FILE.replace(taken)  # servers start a new file for the next test
    for function in set(taken.read_text().split()):
        state().tests_by_mangled_function_name[function].add(nodeid)
    taken.unlink()


class RedisServer:
    """A Redis of our own, on a port of our own, that the test can stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(settings) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("no redis-server on this machine")
    from tests.live_server import free_port  # here: tests.live_server imports this module

    server = RedisServer(free_port())
    server.start()
    settings.CHANNEL_LAYERS = channel_layers(f"redis://127.0.0.1:{server.port}/0")
    yield server
    server.stop()
