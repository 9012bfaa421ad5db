import gc

import pytest
from asgiref.sync import SyncToAsync
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler

from facesite.handlers import SyncMiddlewareASGIHandler
from facesite.serve import YOUNG_COLLECTION_THRESHOLD, tune_garbage_collector


async def trips_to_a_thread(handler: ASGIHandler, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times one request through `handler` hands work from the event loop to a thread."""
    trips = 0
    call = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: object, **kwargs: object) -> object:
        nonlocal trips
        trips += 1
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    response = await HttpCommunicator(handler, "GET", "/healthz").get_response()
    monkeypatch.undo()
    assert response["status"] == 200
    return trips


@pytest.mark.django_db(transaction=True)
async def test_a_request_runs_its_middleware_and_view_in_one_trip_to_a_thread(monkeypatch):
    # At most: request_started's receivers; the middleware with the view; the response's close.
    assert await trips_to_a_thread(SyncMiddlewareASGIHandler(), monkeypatch) <= 3
    # Django's handler runs each hook of each middleware by a trip of its own.
    assert await trips_to_a_thread(ASGIHandler(), monkeypatch) > 10


def test_the_server_freezes_what_it_loaded_and_collects_young_objects_less_often():
    thresholds = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_freeze_count() > 10_000  # Django and the rest of what the tests loaded
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
