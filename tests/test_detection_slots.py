"""The bound on concurrent detections, and its 503 with Retry-After: DETECTION_WORKERS at once,
DETECTION_QUEUE more waiting, the rest refused."""

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from detection import services
from detection.slots import DetectionSlots
from tests.conftest import encode
from tests.live_server import Server, embedded_configuration, running_server
from vision.errors import ServerBusy


def test_slots_admit_the_running_and_the_waiting_then_refuse():
    slots = DetectionSlots(running=1, waiting=1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots.admitted(), slots.turn():
            inside.set()
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]  # one runs, one waits its turn
    for holder in holders:
        holder.start()
    inside.wait(5)

    with pytest.raises(ServerBusy) as refused, slots.admitted():
        pass

    release.set()
    for holder in holders:
        holder.join(5)
    assert refused.value.retry_after > 0
    with slots.admitted(), slots.turn():  # free again once they are done
        pass


@pytest.mark.django_db
def test_an_upload_past_the_queue_gets_503_with_retry_after(coffee_png, monkeypatch):
    full = DetectionSlots(running=1, waiting=0)
    monkeypatch.setattr(services, "slots", full)
    release = threading.Event()
    started = threading.Event()

    def occupy() -> None:
        with full.admitted(), full.turn():
            started.set()
            release.wait(5)

    occupant = threading.Thread(target=occupy)
    occupant.start()
    started.wait(5)
    try:
        response = APIClient().post("/image", {"image": SimpleUploadedFile("p", coffee_png)}, format="multipart")
    finally:
        release.set()
        occupant.join(5)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "server_busy"
    assert int(response["Retry-After"]) > 0


def test_one_detection_holds_its_turn_until_it_leaves():
    slots = DetectionSlots(running=1, waiting=1)
    first_inside, first_may_leave, second_inside = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with slots.admitted(), slots.turn():
            first_inside.set()
            first_may_leave.wait(5)

    def second() -> None:
        with slots.admitted(), slots.turn():
            second_inside.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_inside.wait(5)
    threads[1].start()
    waited = not second_inside.wait(0.3)  # it may not get in while the first holds the only turn
    first_may_leave.set()
    got_in_after = second_inside.wait(5)
    for thread in threads:
        thread.join(5)

    assert waited
    assert got_in_after


def test_the_refusal_says_how_busy_in_good_english():
    slots = DetectionSlots(running=1, waiting=0)

    with slots.admitted(), pytest.raises(ServerBusy) as refused, slots.admitted():
        pass

    assert "1 detections" not in refused.value.message
    assert "1 at once" in refused.value.message


# The live server, configured as users do: one detection at a time, one more waiting.
SLOTS_CONFIGURATION = {"DETECTION_WORKERS": "1", "DETECTION_QUEUE": "1", "THROTTLE_UPLOADS": ""}
WAIT_SECONDS = 30


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        time.sleep(0.02)


def done_line(server: Server, detection_id: str) -> dict:
    """The server's "detection done" log line for one detection: when, and how long its image work took."""
    for line in server.output().splitlines():
        if line.startswith("{") and detection_id in line:
            record = json.loads(line)
            if record["message"] == "detection done":
                return record
    raise AssertionError(f"no 'detection done' line for {detection_id}")


def logged_at(record: dict) -> float:
    return datetime.strptime(record["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_the_live_server_runs_detection_workers_at_once_queues_detection_queue_and_refuses_the_rest(
    tmp_path, http, astronaut, coffee_png
):
    slow_photo = encode(astronaut.resize((5000, 5000)), "JPEG", quality=90)  # a second or more of image work
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **SLOTS_CONFIGURATION}) as server,
        ThreadPoolExecutor(max_workers=6) as pool,
    ):

        def post(photo: bytes) -> requests.Response:
            return http.post(server.base_url + "/image", files={"image": ("p", photo)}, timeout=120)

        def originals() -> int:
            return len(list(server.media_root.rglob("original.*")))

        # An upload is admitted once its original is stored, just before it asks for its turn.
        running = pool.submit(post, slow_photo)
        wait_for(lambda: originals() == 1, "the first upload admitted")
        waiting = pool.submit(post, slow_photo)
        wait_for(lambda: originals() == 2, "the second upload admitted")
        refused = [future.result() for future in [pool.submit(post, coffee_png) for _ in range(4)]]
        both_in_flight = not running.done() and not waiting.done()
        first, second = running.result(), waiting.result()

    assert both_in_flight  # the refusals came while the two admitted ones were still at work
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "server_busy"
        assert int(response.headers["Retry-After"]) > 0
    assert (first.status_code, second.status_code) == (201, 201)
    assert originals() == 2  # nothing of the refused uploads was kept
    # One at a time: the second's image work began only once the first's had ended (its log line
    # comes after storing the result, hence the small allowance), not beside it.
    first_done, second_done = done_line(server, first.json()["id"]), done_line(server, second.json()["id"])
    second_began = logged_at(second_done) - second_done["ms"] / 1000
    allowance = first_done["ms"] / 1000 / 4
    assert second_began >= logged_at(first_done) - allowance, (first_done, second_done)


def test_turns_go_to_those_waiting_in_the_order_they_came():
    slots = DetectionSlots(running=1, waiting=10)
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with slots.turn():
            holding.set()
            release.wait(5)
        # Straight back for another turn, as a stream does for its next frame: behind those waiting.
        with slots.turn():
            order.append("first again")

    def waiter(name: str) -> None:
        with slots.turn():
            order.append(name)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    holding.wait(5)
    for name in ("a", "b", "c"):
        threads.append(threading.Thread(target=waiter, args=(name,)))
        threads[-1].start()
        while len(slots._turn_queue) < len(threads) - 1:  # queued before the next one comes
            time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["a", "b", "c", "first again"]


def test_a_turn_goes_to_the_tenant_that_used_the_least_detection_time():
    slots = DetectionSlots(running=1, waiting=10)
    with slots.turn("costly frames"):
        time.sleep(0.3)
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots.turn("uploads"):
            holding.set()
            release.wait(5)

    def waiter(tenant: str) -> None:
        with slots.turn(tenant):
            order.append(tenant)

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    holding.wait(5)
    for tenant in ("costly frames", "cheap frames"):  # the costly one asks first
        threads.append(threading.Thread(target=waiter, args=(tenant,)))
        threads[-1].start()
        while len(slots._turn_queue) < len(threads) - 1:
            time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["cheap frames", "costly frames"]
