"""The admin's cameras: set up by the operator, their state kept by the watcher (read-only), and
detections filtered by their camera and source."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from detection.models import Detection
from detection.services import detection_create
from live.models import Camera

pytestmark = pytest.mark.django_db(transaction=True)

CAMERAS_URL = "/admin/live/camera/"
DETECTIONS_URL = "/admin/detection/detection/"


# The add form as a person fills it in.
GARDEN = {
    "name": "garden",
    "url": "rtsp://192.0.2.8/stream",
    "enabled": "on",
    "sample_fps": "2",
    "profile": "balanced",
    "min_confidence": "0.7",
    "min_face_size": "0",
    "cooldown_seconds": "30",
    "store_snapshots": "on",
    "annotate_style": "box",
}


@pytest.fixture
def porch() -> Camera:
    return Camera.objects.create(
        name="porch",
        url="rtsp://192.0.2.7/stream",
        state=Camera.State.RETRYING,
        last_error="Cannot open the stream: Connection refused. Retrying in 4 s.",
        last_frame_at=timezone.now(),
        sampled_fps=1.98,
    )


def test_the_list_shows_each_cameras_state(admin_client, porch):
    html = admin_client.get(CAMERAS_URL).content.decode()

    for shown in ("porch", "retrying", "1.98", "Connection refused. Retrying in 4 s."):
        assert shown in html


def test_a_camera_added_in_the_admin_starts_idle_with_the_defaults(admin_client):
    # The state is the watcher's: a form that sends it is not heard.
    response = admin_client.post(CAMERAS_URL + "add/", {**GARDEN, "state": "connected"})

    assert response.status_code == 302
    camera = Camera.objects.get(name="garden")
    assert (camera.state, camera.sample_fps, camera.enabled) == (Camera.State.IDLE, 2.0, True)


def test_a_url_the_watcher_cannot_read_is_refused_with_what_it_reads(admin_client):
    response = admin_client.post(
        CAMERAS_URL + "add/",
        {**GARDEN, "url": "ftp://192.0.2.8/stream"},
    )

    assert response.status_code == 200
    assert "The watcher reads rtsp://" in response.content.decode()
    assert not Camera.objects.exists()


def test_the_state_is_shown_but_not_editable(admin_client, porch):
    form = admin_client.get(f"{CAMERAS_URL}{porch.id}/change/").context["adminform"].form

    assert "url" in form.fields
    assert not {"state", "last_error", "last_frame_at", "sampled_fps", "watched_by"} & set(form.fields)


def test_detections_filter_by_camera_and_source(admin_client, porch, astronaut_jpeg, coffee_png):
    from_porch = detection_create(image_bytes=astronaut_jpeg, source=Detection.Source.CAMERA, camera=porch)
    uploaded = APIClient().post("/image", {"image": SimpleUploadedFile("p", coffee_png)}, format="multipart").json()

    by_camera = admin_client.get(DETECTIONS_URL, {"camera__id__exact": porch.id}).context["cl"].result_list
    by_source = admin_client.get(DETECTIONS_URL, {"source__exact": "upload"}).context["cl"].result_list

    assert [detection.id for detection in by_camera] == [from_porch.id]
    assert [str(detection.id) for detection in by_source] == [uploaded["id"]]
