"""The bound on concurrent detections, and its 503 with Retry-After."""

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from detection import services
from detection.errors import ServerBusy
from detection.slots import DetectionSlots


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
