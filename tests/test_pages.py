"""The page at / and the admin."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_page_has_an_upload_form_and_the_live_script():
    response = Client().get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<input id="image" name="image" type="file"' in html
    assert "/static/detection/live.js" in html


def test_the_admin_login_answers():
    assert Client().get("/admin/login/").status_code == 200


def test_the_admin_needs_a_login():
    response = Client().get("/admin/detection/detection/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_api_docs_work_offline():
    schema = Client().get("/api/schema/", headers={"Accept": "application/json"})
    docs = Client().get("/api/docs/")

    assert schema.status_code == 200
    assert docs.status_code == 200
    # Swagger UI comes from the sidecar package, not a CDN.
    assert "cdn" not in docs.content.decode().lower()
    upload = schema.json()["paths"]["/image"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["$ref"].endswith("/DetectionUploadRequest")
    component = schema.json()["components"]["schemas"]["DetectionUploadRequest"]
    assert component["properties"]["image"] == {
        "type": "string",
        "format": "binary",
        "description": component["properties"]["image"]["description"],
    }
