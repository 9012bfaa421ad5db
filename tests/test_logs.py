"""One structured line per request and per detection, with no image bytes and no keys."""

import json
import logging
import socket

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from facesite.logs import JsonFormatter
from tests.live_server import HOST, embedded_configuration, raw_websocket, read_response, running_server, wait_for

pytestmark = pytest.mark.django_db


def test_an_upload_logs_the_request_and_the_detection(coffee_png, caplog, settings):
    settings.API_KEYS = ["secret-key-that-must-not-be-logged"]
    caplog.set_level(logging.INFO)

    response = Client(REMOTE_ADDR="192.0.2.7").post(
        "/image?x=1",
        {"image": SimpleUploadedFile("p.png", coffee_png)},
        headers={"X-API-Key": "secret-key-that-must-not-be-logged"},
    )

    lines = [JsonFormatter().format(record) for record in caplog.records]
    entries = [json.loads(line) for line in lines]
    [request] = [entry for entry in entries if entry["logger"] == "facesite.requests"]
    [detection] = [entry for entry in entries if entry["message"] == "detection created"]
    assert (request["method"], request["path"], request["status"]) == ("POST", "/image", 201)
    assert request["client"] == "192.0.2.7" and request["ms"] > 0
    assert detection["detection_id"] == response.json()["id"]
    assert (detection["width"], detection["height"], detection["face_count"]) == (600, 400, 0)
    assert detection["bytes"] == len(coffee_png) and detection["client"] == "192.0.2.7"
    everything = "\n".join(lines)
    assert "secret-key-that-must-not-be-logged" not in everything
    assert "PNG" not in everything and len(everything) < 5000  # no image bytes


def test_the_live_server_logs_only_json_lines_without_query_strings(tmp_path):
    """Daphne's plain access line is off; what the application never sees (the transport's own answers,
    websocket connects and disconnects) is logged as JSON lines too."""
    with embedded_configuration(tmp_path) as configuration, running_server(tmp_path, configuration) as server:
        session = requests.Session()
        session.trust_env = False
        session.get(server.base_url + "/healthz?token=in-the-query-string")
        with socket.create_connection((HOST, server.port)) as sock:
            sock.sendall(
                b"POST /image?token=in-the-query-string HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
            )
            assert read_response(sock, timeout=5)[0] == 413
        websocket = raw_websocket(server.port)
        websocket.close()
        wait_for(lambda: "websocket disconnected" in server.output(), 10, "disconnect logged")
        served = server.output().split("Listening on TCP address", 1)[1].splitlines()[1:]

    entries = [json.loads(line) for line in served]  # every line JSON
    requests_logged = {
        (entry["method"], entry["path"], entry["status"]) for entry in entries if entry["message"] == "request"
    }
    assert {("GET", "/healthz", 200), ("POST", "/image", 413)} <= requests_logged
    assert [entry["message"] for entry in entries if entry["logger"] == "facesite.transport"] == [
        "websocket connected",
        "websocket disconnected",
    ]
    assert "in-the-query-string" not in "\n".join(served)


def test_each_detection_logs_its_outcome(astronaut_jpeg, caplog):
    caplog.set_level(logging.INFO)

    done = Client().post("/image", {"image": SimpleUploadedFile("p.jpg", astronaut_jpeg), "profile": "fast"}).json()
    failed = Client().post("/image", {"image": SimpleUploadedFile("p.jpg", astronaut_jpeg[:5000])}).json()

    entries = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    [done_line] = [entry for entry in entries if entry["message"] == "detection done"]
    [failed_line] = [entry for entry in entries if entry["message"] == "detection failed"]
    assert {key: done_line[key] for key in ("detection_id", "status", "width", "height", "face_count")} == {
        "detection_id": done["id"],
        "status": "done",
        "width": 512,
        "height": 512,
        "face_count": 1,
    }
    assert done_line["profile"] == "fast" and done_line["ms"] > 0
    assert (failed_line["error_code"], failed_line["error_message"]) == (
        failed["error"]["code"],
        failed["error"]["message"],
    )
    assert failed_line["error_code"] == "corrupt_image"
