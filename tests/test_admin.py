"""The Django admin: browsing detections, read-only, and deleting them with their files."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from detection.models import Detection
from tests.conftest import stored_files

# Files are deleted when the delete commits, so these tests use real transactions.
pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = "/admin/detection/detection/"


def upload(content: bytes, **fields: str) -> Detection:
    body = APIClient().post("/image", {"image": SimpleUploadedFile("p", content), **fields}, format="multipart").json()
    return Detection.objects.get(id=body["id"])


@pytest.fixture
def detections(astronaut_jpeg, coffee_png, two_faces_jpeg) -> dict[str, Detection]:
    return {"one": upload(astronaut_jpeg), "none": upload(coffee_png), "several": upload(two_faces_jpeg)}


def listed_ids(response) -> set[str]:
    return {str(detection.id) for detection in response.context["cl"].result_list}


def test_the_list_shows_thumbnails_newest_first(admin_client, detections):
    response = admin_client.get(LIST_URL)

    html = response.content.decode()
    for detection in detections.values():
        assert f'<img src="{detection.annotated.url}"' in html
    assert [d.id for d in response.context["cl"].result_list] == [
        detections[key].id for key in ("several", "none", "one")
    ]


@pytest.mark.parametrize("choice", ["none", "one", "several"])
def test_the_list_filters_by_face_count(admin_client, detections, choice):
    assert listed_ids(admin_client.get(LIST_URL, {"faces": choice})) == {str(detections[choice].id)}


def filter_link(admin_client, title: str, display: str) -> str:
    """The list's own link for one choice of one of its filters, as a person would click it."""
    changelist = admin_client.get(LIST_URL).context["cl"]
    spec = next(spec for spec in changelist.filter_specs if spec.title == title)
    choice = next(choice for choice in spec.choices(changelist) if str(choice["display"]) == display)
    return LIST_URL + choice["query_string"]


@pytest.mark.parametrize("length", [36, 13, 8, 4])  # the whole id, up to the second dash, then shorter prefixes
def test_the_list_searches_by_id_or_its_start(admin_client, detections, length):
    wanted = str(detections["one"].id)

    found = listed_ids(admin_client.get(LIST_URL, {"q": wanted[:length]}))

    assert wanted in found
    assert found == {str(d.id) for d in detections.values() if str(d.id).startswith(wanted[:length])}


def test_the_list_filters_by_date(admin_client, detections):
    old = detections["none"]
    Detection.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=40))
    recent = {str(detections["one"].id), str(detections["several"].id)}

    assert listed_ids(admin_client.get(filter_link(admin_client, "created at", "Past 7 days"))) == recent
    assert listed_ids(admin_client.get(filter_link(admin_client, "created at", "Today"))) == recent
    this_month = {"created_at__year": timezone.now().year, "created_at__month": timezone.now().month}
    assert listed_ids(admin_client.get(LIST_URL, this_month)) == recent  # the date hierarchy's link


def test_the_list_filters_by_profile_and_style(admin_client, coffee_png):
    fast, blurred, plain = upload(coffee_png, profile="fast"), upload(coffee_png, annotate="blur"), upload(coffee_png)

    by_fast = listed_ids(admin_client.get(filter_link(admin_client, "detector profile", "fast")))
    by_balanced = listed_ids(admin_client.get(filter_link(admin_client, "detector profile", "balanced")))
    by_blur = listed_ids(admin_client.get(filter_link(admin_client, "annotate style", "blur")))
    by_box = listed_ids(admin_client.get(filter_link(admin_client, "annotate style", "box")))

    assert by_fast == {str(fast.id)}
    assert by_balanced == {str(blurred.id), str(plain.id)}
    assert by_blur == {str(blurred.id)}
    assert by_box == {str(fast.id), str(plain.id)}


def test_the_detail_page_shows_both_images_and_the_faces_read_only(admin_client, detections):
    detection = detections["several"]

    response = admin_client.get(f"{LIST_URL}{detection.id}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'src="{detection.original.url}"' in html and f'src="{detection.annotated.url}"' in html
    assert html.count("<tr><td>") == 2  # one table row per face
    assert 'name="_save"' not in html  # nothing to edit


def test_nobody_adds_detections_by_hand(admin_client):
    assert admin_client.get(f"{LIST_URL}add/").status_code == 403


def test_deleting_one_detection_deletes_its_files(admin_client, detections, media_root):
    detection = detections["one"]

    response = admin_client.post(f"{LIST_URL}{detection.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    remaining = {path.parent.name for path in stored_files(media_root)}
    assert str(detection.id) not in remaining
    assert remaining == {str(detections["none"].id), str(detections["several"].id)}


def test_deleting_many_detections_deletes_their_files(admin_client, detections, media_root):
    chosen = [str(detections["none"].id), str(detections["several"].id)]

    admin_client.post(LIST_URL, {"action": "delete_selected", "_selected_action": chosen, "post": "yes"})

    assert list(Detection.objects.values_list("id", flat=True)) == [detections["one"].id]
    assert {path.parent.name for path in stored_files(media_root)} == {str(detections["one"].id)}


def test_the_list_and_the_detail_page_show_pending_and_failed_detections(admin_client, coffee_png):
    done, pending, failed = upload(coffee_png), upload(coffee_png), upload(coffee_png)
    # As queue mode leaves them: pending until a worker has run it, failed with the reason.
    for detection in (pending, failed):
        detection.annotated.storage.delete(detection.annotated.name)
    Detection.objects.filter(id=pending.id).update(status="pending", annotated="", faces=None, face_count=None)
    Detection.objects.filter(id=failed.id).update(
        status="failed", annotated="", error_code="corrupt_image", error_message="The image is truncated."
    )

    listing = admin_client.get(LIST_URL)
    only_failed = admin_client.get(LIST_URL, {"status__exact": "failed"})
    failed_page = admin_client.get(f"{LIST_URL}{failed.id}/change/")
    pending_page = admin_client.get(f"{LIST_URL}{pending.id}/change/")

    assert listing.status_code == 200
    assert listed_ids(listing) == {str(done.id), str(pending.id), str(failed.id)}
    assert listed_ids(only_failed) == {str(failed.id)}
    assert "corrupt_image: The image is truncated." in failed_page.content.decode()
    assert pending_page.status_code == 200
    assert "the detection is pending" in pending_page.content.decode()
