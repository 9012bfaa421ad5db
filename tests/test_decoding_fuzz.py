"""Thousands of mutated and random files thrown at the decoding and validation code.

Whatever the bytes, decoding either succeeds with a sane image or raises one of our own errors,
which the API turns into a 4xx: never another exception (a 500), never a hang or a memory spike.
"""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vision.errors import DetectionError
from vision.imaging import DecodeLimits, decode_image

MAX_PIXELS = 4_000_000
LIMITS = DecodeLimits(max_pixels=MAX_PIXELS, max_pixels_per_byte=250, ratio_floor_pixels=1_000_000, max_jpeg_scans=32)
# Pillow warns about every odd header it survives; surviving them is the point here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def seed(image_format: str) -> bytes:
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


SEEDS = {image_format: seed(image_format) for image_format in ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"]}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(list(SEEDS.values()))))
    for _ in range(draw(st.integers(1, 12))):
        match draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"])):
            case "flip" if data:
                position = draw(st.integers(0, len(data) - 1))
                data[position] ^= 1 << draw(st.integers(0, 7))
            case "truncate":
                del data[draw(st.integers(0, len(data))) :]
            case "insert":
                position = draw(st.integers(0, len(data)))
                data[position:position] = draw(st.binary(min_size=1, max_size=16))
            case "overwrite" if len(data) > 8:
                # Headers hold sizes and offsets: large values there are what break decoders.
                position = draw(st.integers(0, min(len(data), 64) - 4))
                data[position : position + 4] = draw(
                    st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00"])
                )
    return bytes(data)


def assert_decodes_safely(data: bytes) -> None:
    try:
        image = decode_image(data, limits=LIMITS)
    except DetectionError:
        return
    assert image.bgr.ndim == 3 and image.bgr.shape[2] == 3
    assert 0 < image.width * image.height <= MAX_PIXELS


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_images_decode_or_fail_cleanly(data):
    assert_decodes_safely(data)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_fail_cleanly(data):
    assert_decodes_safely(data)


@pytest.mark.parametrize("image_format", list(SEEDS))
def test_the_seeds_themselves_decode(image_format):
    assert decode_image(SEEDS[image_format], limits=LIMITS).format == image_format
