"""GET /image."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from detection.models import Detection

pytestmark = pytest.mark.django_db


def test_it_lists_detections_newest_first_in_pages(coffee_png):
    client = APIClient()
    ids = [
        client.post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, format="multipart").json()["id"]
        for _ in range(3)
    ]

    first = client.get("/image?page_size=2").json()
    second = client.get(first["next"]).json()

    assert first["count"] == 3
    assert [item["id"] for item in first["results"] + second["results"]] == ids[::-1]
    assert second["next"] is None
    assert first["results"][0]["url"].startswith("http://testserver/media/")


def test_it_lists_nothing_on_a_new_server():
    body = APIClient().get("/image").json()

    assert (body["count"], body["results"]) == (0, [])


def test_after_an_id_lists_only_newer_detections(coffee_png):
    client = APIClient()
    ids = [
        client.post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, format="multipart").json()["id"]
        for _ in range(3)
    ]

    body = client.get(f"/image?after={ids[0]}").json()

    assert [item["id"] for item in body["results"]] == [ids[2], ids[1]]


def test_after_a_time_lists_only_newer_detections(coffee_png):
    client = APIClient()
    first = client.post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, format="multipart").json()
    second = client.post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, format="multipart").json()

    body = client.get("/image", {"after": first["created_at"]}).json()
    with_offset = client.get("/image", {"after": first["created_at"].replace("Z", "+00:00")}).json()

    assert [item["id"] for item in body["results"]] == [second["id"]]
    assert with_offset["results"] == body["results"]


@pytest.mark.parametrize("value", ["yesterday", "00000000-0000-0000-0000-000000000000"])
def test_it_rejects_an_after_it_cannot_place(value):
    response = APIClient().get("/image", {"after": value})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert "after" in response.json()["error"]["message"]


# Times that do not exist, offsets of a day or more, and times that leave the years 1-9999 in UTC.
IMPOSSIBLE_TIMES = [
    "9999-99-99T99:99:99",
    "2026-02-30T10:00:00Z",
    "2026-01-01T25:00:00",
    "2026-01-01T10:00:00+24:00",
    "2026-01-01T10:00:00-25:30",
    "2026-01-01T10:00:00 99:99",  # "+99:99" as a query string delivers it
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+00:01",
]


@pytest.mark.parametrize("value", IMPOSSIBLE_TIMES)
def test_it_rejects_an_after_time_that_cannot_be(value):
    response = APIClient().get("/image", {"after": value})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert "after" in response.json()["error"]["message"]


@st.composite
def time_like(draw: st.DrawFn) -> str:
    """ISO 8601 shapes with every part drawn beyond its range: what a careless or hostile client sends."""
    year = draw(st.integers(0, 9999))
    month, day, hour, minute, second = (draw(st.integers(0, 99)) for _ in range(5))
    text = f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
    if draw(st.booleans()):
        text += f".{draw(st.integers(0, 999_999)):06}"
    match draw(st.sampled_from(["naive", "Z", "+", "-", " "])):
        case "Z":
            text += "Z"
        case "+" | "-" | " " as sign:
            text += f"{sign}{draw(st.integers(0, 99)):02}:{draw(st.integers(0, 99)):02}"
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(time_like(), st.text(max_size=40)))
def test_any_after_value_gets_a_list_or_a_400(value):
    response = APIClient().get("/image", {"after": value})

    assert response.status_code in (200, 400), value
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "invalid_parameter"


def test_it_lists_only_detections_in_the_status_asked_for(coffee_png):
    client = APIClient()
    response = client.post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, format="multipart")
    detection_id = response.json()["id"]

    done = client.get("/image", {"status": "done"}).json()
    pending = client.get("/image", {"status": "pending"}).json()
    unknown = client.get("/image", {"status": "lost"})

    assert [item["id"] for item in done["results"]] == [detection_id]
    assert done["results"][0]["status"] == "done"
    assert pending["count"] == 0
    assert unknown.status_code == 400
    assert "status" in unknown.json()["error"]["message"]


def test_page_size_is_capped_at_100(coffee_png):
    response = APIClient().post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, format="multipart")
    detection = Detection.objects.get(id=response.json()["id"])
    # More rows than one page may hold: copies of a real detection (listing reads only the rows).
    Detection.objects.bulk_create(
        Detection(**{**model_to_dict(detection, exclude=["id"]), "id": uuid.uuid4()}) for _ in range(105)
    )

    body = APIClient().get("/image", {"page_size": 1000}).json()

    assert body["count"] == 106
    assert len(body["results"]) == 100
    assert body["next"] is not None
