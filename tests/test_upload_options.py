"""POST /image's per-request options: profile, max_faces, min_face_size and annotate."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from detection.models import Detection
from detection.pipeline import decode_limits
from vision.detector import detect_faces
from vision.imaging import decode_image

pytestmark = pytest.mark.django_db


def upload(content: bytes, **fields: object):
    return APIClient().post("/image", {"image": SimpleUploadedFile("p.jpg", content), **fields}, format="multipart")


def body_threshold(body: dict) -> float:
    return Detection.objects.get(id=body["id"]).min_confidence


def annotated_pixels(body: dict) -> np.ndarray:
    return np.asarray(Image.open(Detection.objects.get(id=body["id"]).annotated).convert("RGB"), dtype=int)


def face_region(pixels: np.ndarray, face: dict) -> np.ndarray:
    box = face["box"]
    return pixels[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]]


@pytest.mark.parametrize("profile", ["fast", "balanced", "accurate"])
def test_each_profile_can_be_asked_for(two_faces_jpeg, profile):
    body = upload(two_faces_jpeg, profile=profile).json()

    assert body["detector"]["profile"] == profile
    assert body["face_count"] >= 1


def test_the_requested_profile_is_the_one_that_runs(crowd_jpeg, settings):
    # On a crowd the profiles find different faces: each upload must get its own profile's.
    image = decode_image(crowd_jpeg, limits=decode_limits())
    found = {}
    for profile in ("fast", "accurate"):
        body = upload(crowd_jpeg, profile=profile).json()
        threshold = body_threshold(body)
        expected = detect_faces(image.bgr, min_confidence=threshold, profile=profile, threads=settings.DETECTOR_THREADS)
        assert body["faces"] == [face.as_json() for face in expected]
        found[profile] = body["face_count"]

    assert found["accurate"] >= found["fast"] + 30


def test_the_default_profile_is_the_configured_one(astronaut_jpeg, settings):
    settings.DETECTOR_PROFILE = "fast"

    assert upload(astronaut_jpeg).json()["detector"]["profile"] == "fast"


def test_max_faces_keeps_the_largest(two_faces_jpeg):
    both = upload(two_faces_jpeg).json()
    assert both["face_count"] == 2

    body = upload(two_faces_jpeg, max_faces=1).json()

    largest = max(both["faces"], key=lambda face: face["box"]["width"] * face["box"]["height"])
    assert body["faces"] == [largest]
    assert body["face_count"] == 1


def test_min_face_size_drops_small_faces(two_faces_jpeg):
    both = upload(two_faces_jpeg).json()
    smaller = min(min(face["box"]["width"], face["box"]["height"]) for face in both["faces"])

    body = upload(two_faces_jpeg, min_face_size=smaller + 1).json()

    assert body["face_count"] == 1
    assert min(body["faces"][0]["box"]["width"], body["faces"][0]["box"]["height"]) > smaller


def test_options_also_work_in_the_query_string_of_a_raw_upload(two_faces_jpeg):
    response = APIClient().post("/image?max_faces=1&profile=fast", data=two_faces_jpeg, content_type="image/jpeg")

    assert response.json()["face_count"] == 1
    assert response.json()["detector"]["profile"] == "fast"


def test_boxes_are_drawn_by_default(astronaut_jpeg):
    body = upload(astronaut_jpeg).json()

    assert body["annotate"] == "box"
    drawn = annotated_pixels(body)
    box = body["faces"][0]["box"]
    left_edge = drawn[box["y"] + 10 : box["y"] + box["height"] - 10, box["x"]]
    assert (np.abs(left_edge - [0, 200, 0]).sum(axis=1) < 120).mean() > 0.8  # a green line


@pytest.mark.parametrize("style", ["blur", "pixelate"])
def test_anonymising_styles_hide_the_face(astronaut_jpeg, astronaut, style):
    body = upload(astronaut_jpeg, annotate=style).json()

    assert body["annotate"] == style
    original = np.asarray(astronaut, dtype=int)
    anonymised = annotated_pixels(body)
    face = body["faces"][0]
    # Detail (differences between neighbouring pixels) is gone from the face, kept elsewhere.
    assert (
        np.abs(np.diff(face_region(anonymised, face), axis=1)).mean()
        < 0.4 * np.abs(np.diff(face_region(original, face), axis=1)).mean()
    )
    assert np.abs(anonymised[400:, 400:] - original[400:, 400:]).mean() < 8
    assert Image.open(io.BytesIO(Detection.objects.get(id=body["id"]).annotated.read())).size == (512, 512)


@pytest.mark.parametrize("style", ["blur", "pixelate"])
def test_anonymising_defaults_favour_recall(crowd_jpeg, style, settings):
    boxed = upload(crowd_jpeg).json()

    anonymised = upload(crowd_jpeg, annotate=style).json()

    assert anonymised["detector"]["profile"] == settings.ANONYMISE_PROFILE
    confidences = [face["confidence"] for face in anonymised["faces"]]
    assert min(confidences) >= settings.ANONYMISE_MIN_CONFIDENCE
    assert sum(confidence < settings.DETECTOR_MIN_CONFIDENCE for confidence in confidences) >= 20
    assert anonymised["face_count"] >= boxed["face_count"] + 20


def test_the_anonymising_profile_is_the_configured_one(astronaut_jpeg, settings):
    settings.ANONYMISE_PROFILE = "accurate"

    assert upload(astronaut_jpeg, annotate="blur").json()["detector"]["profile"] == "accurate"
    assert upload(astronaut_jpeg).json()["detector"]["profile"] == settings.DETECTOR_PROFILE


@pytest.mark.parametrize("style", ["blur", "pixelate"])
def test_explicit_options_win_over_the_anonymising_defaults(crowd_jpeg, style):
    boxed = upload(crowd_jpeg, profile="fast", min_confidence=0.7).json()

    anonymised = upload(crowd_jpeg, annotate=style, profile="fast", min_confidence=0.7).json()

    assert anonymised["detector"]["profile"] == "fast"
    assert anonymised["faces"] == boxed["faces"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("profile", "turbo"),
        ("max_faces", "0"),
        ("max_faces", "many"),
        ("min_face_size", "-5"),
        ("min_face_size", "1.5"),
        ("annotate", "sparkles"),
    ],
)
def test_it_rejects_bad_option_values(astronaut_jpeg, field, value):
    response = upload(astronaut_jpeg, **{field: value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert field in error["message"]
    assert Detection.objects.count() == 0


@pytest.mark.parametrize("field", ["min_confidence", "profile", "min_face_size", "max_faces", "annotate"])
def test_an_empty_option_is_one_not_given(astronaut_jpeg, field):
    # What a form sends for a field left blank, the API docs' form included.
    in_the_form = upload(astronaut_jpeg, **{field: ""})
    in_the_query = APIClient().post(f"/image?{field}=", data=astronaut_jpeg, content_type="image/jpeg")

    for response in (in_the_form, in_the_query):
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["face_count"], body["detector"]["profile"], body["annotate"]) == (1, "balanced", "box")
