"""GET /image/<id>."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_it_returns_the_same_json_as_the_upload(astronaut_jpeg):
    client = APIClient()
    created = client.post("/image", {"image": SimpleUploadedFile("a.jpg", astronaut_jpeg)}, format="multipart").json()

    response = client.get(f"/image/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


def test_it_answers_404_for_an_unknown_id():
    response = APIClient().get(f"/image/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_it_answers_404_for_an_id_that_is_not_a_uuid():
    response = APIClient().get("/image/42")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
