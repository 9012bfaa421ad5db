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
