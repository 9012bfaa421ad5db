"""HTTPS=true behind a TLS proxy, on the live server: plain HTTP is redirected, HTTPS answers carry
HSTS and secure cookies, and the health probes answer plain HTTP whatever their Host."""

from collections.abc import Iterator

import pytest
import requests

from tests.live_server import Server, embedded_configuration, running_server

PUBLIC_HOST = "faces.example.com"
# What nginx in front adds to a request that reached it over TLS.
OVER_TLS = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
OVER_PLAIN_HTTP = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.7"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("https")
    configuration = {"HTTPS": "true", "ALLOWED_HOSTS": PUBLIC_HOST, "PROXY_HEADERS": "true", "NUM_PROXIES": "1"}
    with embedded_configuration(root) as database, running_server(root, {**database, **configuration}) as running:
        yield running


@pytest.mark.parametrize("path", ["/", "/image", "/api/docs/", "/admin/login/"])
def test_plain_http_is_redirected_to_https(server: Server, http: requests.Session, path: str):
    response = http.get(server.base_url + path, headers=OVER_PLAIN_HTTP, allow_redirects=False, timeout=10)

    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{PUBLIC_HOST}{path}"


def test_an_upload_over_plain_http_is_redirected_not_stored(server: Server, http: requests.Session, astronaut_jpeg):
    response = http.post(
        server.base_url + "/image",
        files={"image": ("a.jpg", astronaut_jpeg)},
        headers=OVER_PLAIN_HTTP,
        allow_redirects=False,
        timeout=30,
    )

    assert response.status_code == 301
    assert not server.media_root.exists() or not any(server.media_root.rglob("*.jpg"))


def test_https_answers_carry_hsts_and_secure_cookies(server: Server, http: requests.Session):
    page = http.get(server.base_url + "/image", headers=OVER_TLS, timeout=10)
    login = http.get(server.base_url + "/admin/login/", headers=OVER_TLS, timeout=10)

    assert page.status_code == 200, page.text
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert login.status_code == 200
    csrf_cookie = next(cookie for cookie in login.cookies if cookie.name == "csrftoken")
    assert csrf_cookie.secure


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("host", [PUBLIC_HOST, "127.0.0.1", "10.0.0.5:8282"])
def test_health_probes_answer_plain_http_whatever_their_host(server: Server, http: requests.Session, path, host):
    response = http.get(server.base_url + path, headers={"Host": host}, allow_redirects=False, timeout=30)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
