"""API keys: open without any, required for uploads once one exists, optional for reads."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from access.models import ApiKey
from access.services import api_key_create, hash_key
from detection.models import Detection

pytestmark = pytest.mark.django_db


def upload(client: APIClient, content: bytes, **headers: str):
    return client.post("/image", {"image": SimpleUploadedFile("p", content)}, format="multipart", headers=headers)


def test_without_keys_the_api_is_open(coffee_png):
    assert upload(APIClient(), coffee_png).status_code == 201


def test_with_a_key_an_upload_without_it_is_refused(coffee_png):
    api_key_create(name="camera")

    response = upload(APIClient(), coffee_png)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert "X-API-Key" in response.json()["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_key_works_as_a_bearer_token_or_a_header(coffee_png):
    api_key, key = api_key_create(name="camera")

    assert upload(APIClient(), coffee_png, Authorization=f"Bearer {key}").status_code == 201
    assert upload(APIClient(), coffee_png, **{"X-API-Key": key}).status_code == 201
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_wrong_or_revoked_key_is_refused(coffee_png):
    api_key, key = api_key_create(name="camera")
    api_key_create(name="another camera")  # still active: the API stays closed

    wrong = upload(APIClient(), coffee_png, Authorization="Bearer fk_guess")
    ApiKey.objects.filter(id=api_key.id).update(active=False)
    revoked = upload(APIClient(), coffee_png, Authorization=f"Bearer {key}")

    for response in (wrong, revoked):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/image"), ("get", "/image"), ("get", f"/image/{uuid.uuid4()}"), ("get", "/media/detections/a.jpg")],
)
def test_a_missing_key_and_a_wrong_key_have_their_own_codes(settings, method, path):
    settings.API_KEYS = ["a-key-from-the-environment"]
    settings.API_KEYS_REQUIRED_FOR_READ = True
    send = getattr(APIClient(), method)

    missing = send(path)
    wrong = send(path, headers={"X-API-Key": "a-key-from-the-environmenT"})

    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "not_authenticated")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "authentication_failed")


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_with_no_key_configured_a_presented_key_is_ignored(coffee_png, header):
    value = "Bearer anything" if header == "Authorization" else "anything"

    assert upload(APIClient(), coffee_png, **{header: value}).status_code == 201
    assert APIClient().get("/image", headers={header: value}).status_code == 200


def test_keys_from_the_environment_work(coffee_png, settings):
    settings.API_KEYS = ["a-key-from-the-environment"]

    assert upload(APIClient(), coffee_png).status_code == 401
    assert upload(APIClient(), coffee_png, **{"X-API-Key": "a-key-from-the-environment"}).status_code == 201


def test_only_a_hash_of_the_key_is_stored():
    api_key, key = api_key_create(name="camera")

    assert api_key.hashed == hash_key(key)
    assert key not in str(ApiKey.objects.filter(id=api_key.id).values().get())


def test_reads_stay_open_unless_configured(coffee_png, settings):
    api_key_create(name="camera")
    assert APIClient().get("/image").status_code == 200

    settings.API_KEYS_REQUIRED_FOR_READ = True

    assert APIClient().get("/image").status_code == 401
    assert APIClient().get("/healthz").status_code == 200  # probes never need a key


def test_a_logged_in_operator_uploads_from_the_page_with_the_csrf_token(coffee_png):
    api_key_create(name="camera")
    operator = get_user_model().objects.create_superuser("operator", "", "a long pass phrase")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    token = browser.get("/").context["csrf_token"]

    without_token = browser.post("/image", {"image": SimpleUploadedFile("p", coffee_png)})
    with_token = browser.post(
        "/image", {"image": SimpleUploadedFile("p", coffee_png)}, headers={"X-CSRFToken": str(token)}
    )

    assert without_token.status_code == 403
    assert with_token.status_code == 201


def test_the_admin_shows_a_new_key_once(admin_client):
    response = admin_client.post("/admin/access/apikey/add/", {"name": "camera", "active": "on"}, follow=True)

    [message] = [str(message) for message in response.context["messages"] if "copy it now" in str(message)]
    key = message.split(" is ", 1)[1].split(" ", 1)[0]
    assert ApiKey.objects.get().hashed == hash_key(key)


def test_editing_a_key_in_the_admin_keeps_it(admin_client, coffee_png):
    api_key, key = api_key_create(name="camera")

    response = admin_client.post(
        f"/admin/access/apikey/{api_key.id}/change/", {"name": "front door camera", "active": "on"}, follow=True
    )

    assert not [message for message in response.context["messages"] if "copy it now" in str(message)]
    api_key.refresh_from_db()
    assert (api_key.name, api_key.hashed) == ("front door camera", hash_key(key))
    upload = APIClient().post("/image", {"image": SimpleUploadedFile("c.png", coffee_png)}, HTTP_X_API_KEY=key)
    assert upload.status_code == 201, upload.content


def logged_in(*, is_staff: bool) -> Client:
    user = get_user_model().objects.create_user("someone", password="a long pass phrase", is_staff=is_staff)
    browser = Client()
    browser.force_login(user)
    return browser


def test_a_logged_in_user_who_is_not_staff_may_not_upload(coffee_png):
    api_key_create(name="camera")

    response = logged_in(is_staff=False).post("/image", {"image": SimpleUploadedFile("p", coffee_png)})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Detection.objects.exists()


def test_details_and_media_need_a_key_when_reads_do(coffee_png, settings):
    _, key = api_key_create(name="camera")
    body = upload(APIClient(), coffee_png, **{"X-API-Key": key}).json()
    settings.API_KEYS_REQUIRED_FOR_READ = True
    paths = [
        f"/image/{body['id']}",
        *(body[field].removeprefix("http://testserver") for field in ("url", "original_url")),
    ]

    for path in paths:
        assert APIClient().get(path).status_code == 401, path
        assert logged_in_user_gets(path) == 403, path
        assert APIClient().get(path, headers={"X-API-Key": key}).status_code == 200, path


def logged_in_user_gets(path: str) -> int:
    client = Client()
    user, _ = get_user_model().objects.get_or_create(username="reader")
    client.force_login(user)
    return client.get(path).status_code


@pytest.mark.parametrize(("trusted", "expected"), [([], 403), (["https://faces.example.com"], 201)])
def test_behind_https_the_page_uploads_only_from_a_trusted_origin(coffee_png, settings, trusted, expected):
    # A TLS proxy in front: the browser's Origin is https://faces.example.com, the request reaching us is http.
    settings.CSRF_TRUSTED_ORIGINS = trusted
    settings.ALLOWED_HOSTS = ["faces.example.com"]
    api_key_create(name="camera")
    operator = get_user_model().objects.create_superuser("operator", "", "a long pass phrase")
    browser = Client(enforce_csrf_checks=True, HTTP_HOST="faces.example.com")
    browser.force_login(operator)
    token = browser.get("/").context["csrf_token"]

    response = browser.post(
        "/image",
        {"image": SimpleUploadedFile("p", coffee_png)},
        headers={"X-CSRFToken": str(token), "Origin": "https://faces.example.com"},
    )

    assert response.status_code == expected
