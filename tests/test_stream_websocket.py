"""The /stream websocket: frames in, faces out, the latest frame winning; options, errors that leave
the socket open, and snapshots stored as ordinary detections."""

import gc
import json
import os
import threading
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from detection.models import Detection
from detection.services import slots
from facesite.asgi import application
from tests.conftest import ASTRONAUT_FACE, encode, overlap

# Snapshots commit their detection in another thread: a real transaction is needed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def stream() -> AsyncIterator[WebsocketCommunicator]:
    communicator = WebsocketCommunicator(application, "/stream", headers=[(b"host", b"testserver")])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    ready = await communicator.receive_json_from(timeout=5)
    assert ready["type"] == "stream.ready"
    yield communicator
    await communicator.disconnect()


async def answer(stream: WebsocketCommunicator) -> dict:
    return await stream.receive_json_from(timeout=10)


async def test_it_answers_a_frame_with_its_faces(stream, astronaut_jpeg):
    await stream.send_to(bytes_data=astronaut_jpeg)

    faces = await answer(stream)
    assert faces["type"] == "frame.faces"
    assert (faces["seq"], faces["width"], faces["height"], faces["dropped"]) == (1, 512, 512, 0)
    assert len(faces["faces"]) == 1
    assert overlap(faces["faces"][0]["box"], ASTRONAUT_FACE) > 0.5
    assert set(faces["faces"][0]) == {"box", "confidence", "landmarks"}  # as in the REST API
    assert faces["detect_ms"] > 0 and faces["waited_ms"] >= 0


async def test_the_latest_frame_wins_while_one_is_detected(stream, astronaut_jpeg):
    # Every detection slot taken: the stream's first frame waits for a turn, and the frames sent
    # meanwhile replace each other instead of queueing.
    release = every_turn_held()
    for _ in range(10):
        await stream.send_to(bytes_data=astronaut_jpeg)
    await stream.receive_nothing(timeout=0.3)
    release.set()

    answers = [await answer(stream)]
    while answers[-1]["seq"] < 10:
        answers.append(await answer(stream))
    assert [a["type"] for a in answers] == ["frame.faces"] * len(answers)
    assert len(answers) <= 2  # the one taken before the others came, then the latest
    assert len(answers) + sum(a["dropped"] for a in answers) == 10
    assert answers[-1]["waited_ms"] > 300
    assert await stream.receive_nothing(timeout=0.5)


def every_turn_held() -> threading.Event:
    """Every detection slot taken by a thread until the event returned is set."""
    release = threading.Event()
    for _ in range(slots.running):
        held = threading.Event()
        threading.Thread(target=hold_a_turn, args=(held, release), daemon=True).start()
        held.wait(5)
    return release


def hold_a_turn(held: threading.Event, release: threading.Event) -> None:
    with slots.turn():
        held.set()
        release.wait(10)


async def test_an_error_for_a_frame_counts_the_frames_dropped_before_it(stream, astronaut_jpeg):
    release = every_turn_held()
    for _ in range(9):
        await stream.send_to(bytes_data=astronaut_jpeg)
    await stream.send_to(bytes_data=astronaut_jpeg[:2000])  # corrupt, and the latest: the one detected next
    await stream.receive_nothing(timeout=0.3)
    release.set()

    first, last = await answer(stream), await answer(stream)
    assert (first["type"], first["seq"], first["dropped"]) == ("frame.faces", 1, 0)
    assert (last["type"], last["error"]["code"], last["seq"], last["dropped"]) == ("error", "corrupt_image", 10, 8)


async def test_a_frame_that_fails_is_freed_at_once(stream):
    # Were its failure's traceback to keep it in a reference cycle, each failed frame would wait for
    # the garbage collector: four streams of bad 2 MB frames grew the server by 1.2 GB.
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(20):
            await stream.send_to(bytes_data=os.urandom(1024 * 1024))
            assert (await answer(stream))["error"]["code"] == "unsupported_image_format"
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < 5 * 1024 * 1024  # the last frame, kept for a snapshot, and change


async def test_options_apply_to_the_next_frames_and_are_echoed(stream, astronaut_jpeg):
    await stream.send_to(text_data=json.dumps({"type": "options", "profile": "balanced", "min_confidence": 0.99}))

    assert await answer(stream) == {
        "type": "options",
        "options": {
            "profile": "balanced",
            "min_confidence": 0.99,
            "min_face_size": 0,
            "max_faces": None,
            "annotate": "box",
        },
    }
    await stream.send_to(bytes_data=astronaut_jpeg)
    assert (await answer(stream))["faces"] == []  # the astronaut's face is not 0.99 sure


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "options", "min_confidence": 2}, "invalid_parameter"),
        ({"type": "options", "min_confidence": 0.01}, "invalid_parameter"),
        ({"type": "options", "profile": "\x00"}, "invalid_parameter"),
        ({"type": "options", "max_faces": 10**20}, "invalid_parameter"),
        ({"type": "dance"}, "invalid_message"),
        ([1, 2], "invalid_message"),
        ("not json", "invalid_message"),
        pytest.param("[" * 2048 + "]" * 2048, "invalid_message", id="nested-deeper-than-the-parser-recurses"),
        ('{"type": "options", "profile": "fast"' + " " * 5000 + "}", "invalid_message"),
        ({"type": "snapshot"}, "no_frame"),
    ],
)
async def test_a_bad_message_gets_an_error_and_the_stream_goes_on(stream, astronaut_jpeg, message, code):
    await stream.send_to(text_data=message if isinstance(message, str) else json.dumps(message))

    error = await answer(stream)
    assert error["type"] == "error" and error["error"]["code"] == code and error["error"]["message"]
    await stream.send_to(bytes_data=astronaut_jpeg)
    assert len((await answer(stream))["faces"]) == 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (lambda astronaut: encode(astronaut, "PNG"), "unsupported_image_format"),
        (lambda astronaut: encode(astronaut, "JPEG")[:2000], "corrupt_image"),
        (lambda astronaut: b"", "image_empty"),
        (lambda astronaut: encode(astronaut.resize((2000, 2000)), "JPEG"), "image_too_large"),
    ],
)
async def test_a_bad_frame_gets_an_error_with_its_seq(stream, astronaut, astronaut_jpeg, settings, frame, code):
    settings.STREAM_MAX_FRAME_PIXELS = 1000 * 1000

    # As Daphne hands it over (the communicator's send_to refuses an empty message).
    await stream.send_input({"type": "websocket.receive", "bytes": frame(astronaut)})
    error = await answer(stream)
    assert (error["type"], error["error"]["code"], error["seq"]) == ("error", code, 1)
    await stream.send_to(bytes_data=astronaut_jpeg)
    assert (await answer(stream))["seq"] == 2


async def test_a_webp_frame_is_detected(stream, astronaut):
    await stream.send_to(bytes_data=encode(astronaut, "WEBP", quality=80))

    assert len((await answer(stream))["faces"]) == 1


async def test_a_snapshot_is_stored_as_a_detection_from_a_stream(stream, astronaut_jpeg, coffee_png):
    await stream.send_to(bytes_data=astronaut_jpeg)
    await answer(stream)
    await stream.send_to(text_data=json.dumps({"type": "options", "annotate": "blur"}))
    await answer(stream)
    await stream.send_to(text_data=json.dumps({"type": "snapshot"}))

    created = await answer(stream)
    assert created["type"] == "snapshot.created" and created["seq"] == 1
    detection = created["detection"]
    assert (detection["source"], detection["status"], detection["face_count"]) == ("stream", "done", 1)
    assert detection["annotate"] == "blur"
    assert detection["url"].startswith("http://testserver/media/")
    stored = await sync_to_async(Detection.objects.get)(id=detection["id"])
    assert stored.source == Detection.Source.STREAM and stored.original.read() == astronaut_jpeg


async def test_snapshots_count_against_the_upload_rate_limit(stream, astronaut_jpeg, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "uploads": "1/min"}
    await stream.send_to(bytes_data=astronaut_jpeg)
    await answer(stream)

    await stream.send_to(text_data=json.dumps({"type": "snapshot"}))
    assert (await answer(stream))["type"] == "snapshot.created"
    await stream.send_to(text_data=json.dumps({"type": "snapshot"}))
    refused = await answer(stream)
    assert refused["error"]["code"] == "throttled" and 0 < refused["retry_after"] <= 60
    assert await sync_to_async(Detection.objects.count)() == 1
