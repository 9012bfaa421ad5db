"""GET /image."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

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
