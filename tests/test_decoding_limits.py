"""Images small on the wire but expensive to decode, and sizes the annotated JPEG cannot have:
refused from the header with a JSON 4xx, before any pixel is decoded; real photos unaffected."""

import io
import time

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.conftest import encode, require_dev_set
from tests.live_server import embedded_configuration, running_server
from vision.errors import ImageTooCostlyToDecode, ImageTooLarge
from vision.imaging import MAX_SIDE, DecodeLimits, decode_image, encode_jpeg, jpeg_scan_count, open_image

# The server's defaults (facesite/settings.py).
LIMITS = DecodeLimits(max_pixels=50_000_000, max_pixels_per_byte=250, ratio_floor_pixels=4_000_000, max_jpeg_scans=32)
SOS = b"\xff\xda"


def scans_of(jpeg: bytes) -> list[tuple[int, int]]:
    """(start, end) of each scan: its SOS segment and entropy-coded data."""
    spans, start = [], jpeg.find(SOS)
    while start != -1:
        end = start + 2
        while not (jpeg[end] == 0xFF and jpeg[end + 1] not in (0, *range(0xD0, 0xD8))):
            end += 1
        spans.append((start, end))
        start = jpeg.find(SOS, end)
    return spans


def progressive_jpeg_with_repeated_scans(side: int, repeats: int) -> bytes:
    """A flat progressive JPEG whose smallest scan (a few bytes, yet a pass over every block of the
    image) is repeated: the decoder only warns about the odd progression and goes through them all."""
    jpeg = encode(Image.new("RGB", (side, side), (120, 130, 140)), "JPEG", progressive=True, quality=90)
    spans = scans_of(jpeg)
    smallest = min(spans, key=lambda span: span[1] - span[0])
    end_of_last = spans[-1][1]
    return jpeg[:end_of_last] + jpeg[smallest[0] : smallest[1]] * repeats + jpeg[end_of_last:]


# Tiny files of 3,000x2,000 (6 megapixels, past the ratio's floor of 4) in every format that compresses.
TINY_HUGE = {
    "PNG": lambda image: encode(image.convert("1"), "PNG"),
    "GIF": lambda image: encode(image.convert("P"), "GIF"),
    "WEBP": lambda image: encode(image, "WEBP", lossless=True),
    "AVIF": lambda image: encode(image, "AVIF", quality=1),
    "HEIF": lambda image: encode(image, "HEIF", quality=1),
    "TIFF": lambda image: encode(image.convert("1"), "TIFF", compression="group4"),
}


@pytest.mark.parametrize("image_format", list(TINY_HUGE))
def test_it_refuses_a_tiny_file_of_many_pixels_in_every_format(image_format):
    bomb = TINY_HUGE[image_format](Image.new("RGB", (3000, 2000)))
    assert len(bomb) * LIMITS.max_pixels_per_byte < 6_000_000  # a bomb indeed

    started = time.perf_counter()
    with pytest.raises(ImageTooCostlyToDecode, match="6000000 pixels from only"):
        decode_image(bomb, limits=LIMITS)
    assert time.perf_counter() - started < 0.5  # refused from the header, not after decoding


def test_below_the_floor_any_compression_is_decoded():
    tiny = encode(Image.new("1", (2000, 2000)), "PNG")  # 4 megapixels in a few kB

    assert decode_image(tiny, limits=LIMITS).width == 2000


@pytest.mark.parametrize("side", [1000, 3000])
def test_it_refuses_a_progressive_jpeg_with_repeated_scans(side):
    bomb = progressive_jpeg_with_repeated_scans(side, repeats=1000)

    started = time.perf_counter()
    with pytest.raises(ImageTooCostlyToDecode, match="1010 scans; the limit is 32"):
        decode_image(bomb, limits=LIMITS)
    assert time.perf_counter() - started < 0.5


def test_scans_are_counted_from_the_segments_not_from_metadata(astronaut):
    # An EXIF thumbnail is a JPEG of its own, with scans of its own: they are not the photo's.
    thumbnail = encode(astronaut.resize((160, 160)), "JPEG", progressive=True)
    exif = Image.Exif()
    exif[0x010E] = "x"  # a description, so the thumbnail block sits after a real IFD
    photo = encode(astronaut, "JPEG", progressive=True, exif=exif.tobytes() + thumbnail * 3)

    assert photo.count(SOS) == 40
    assert jpeg_scan_count(photo) == 10


@pytest.mark.parametrize(
    ("mode", "options", "scans"),
    [
        ("RGB", {}, 1),
        ("RGB", {"progressive": True}, 10),  # libjpeg's progression for colour
        ("L", {"progressive": True}, 6),
        ("CMYK", {"progressive": True}, 18),
        ("RGB", {"progressive": True, "optimize": True, "subsampling": 0, "quality": 95}, 10),
    ],
)
def test_real_encoders_write_far_fewer_scans_than_the_limit(astronaut, mode, options, scans):
    jpeg = encode(astronaut.convert(mode), "JPEG", **options)

    assert jpeg_scan_count(jpeg) == scans
    assert decode_image(jpeg, limits=LIMITS).width == 512


def test_typical_camera_and_phone_photos_pass():
    # 8 megapixels (3264x2448) of real texture with a little sensor noise, as phones write them.
    rng = np.random.default_rng(3)
    texture = np.asarray(Image.fromarray(data.astronaut()).resize((3264, 2448)), dtype=np.int16)
    noise = rng.integers(-4, 5, texture.shape, dtype=np.int16)
    noisy = Image.fromarray(np.clip(texture + noise, 0, 255).astype(np.uint8))
    for image_format, options in [
        ("JPEG", {"quality": 85}),
        ("JPEG", {"quality": 75, "progressive": True}),
        ("WEBP", {"quality": 60}),
        ("AVIF", {"quality": 50, "speed": 10}),  # AV1 as in HEIC, whose encoder takes half a minute here
    ]:
        upload = encode(noisy, image_format, **options)
        assert open_image(upload, limits=LIMITS).size == (3264, 2448), image_format


def test_every_photo_of_the_dev_sample_passes():
    photos = sorted((require_dev_set() / "images").iterdir())
    assert len(photos) > 300

    for photo in photos:
        content = photo.read_bytes()
        open_image(content, limits=LIMITS)  # raises on a refusal
        if photo.suffix == ".jpg":  # and the same photos written progressive
            progressive = encode(Image.open(io.BytesIO(content)), "JPEG", progressive=True, quality=90)
            open_image(progressive, limits=LIMITS)


def animation_with_later_frames_broken(image_format: str) -> bytes:
    """12 frames of which only the first can be decoded: the file cut after a third (GIF, PNG,
    TIFF), or each later frame's bitstream inverted past its header (WebP, whose reader checks the
    file's structure first)."""
    frames = [Image.new("RGB", (200, 100), (index * 20, 0, 0)) for index in range(12)]
    options = {"lossless": True} if image_format == "WEBP" else {}
    whole = encode(frames[0], image_format, save_all=True, append_images=frames[1:], **options)
    if image_format != "WEBP":
        return whole[: len(whole) // 3]
    broken = bytearray(whole)
    chunk = broken.find(b"ANMF", broken.find(b"ANMF") + 4)
    while chunk != -1:
        bitstream = chunk + 8 + 16  # past the chunk's header and the frame's position and timing
        length = int.from_bytes(broken[bitstream + 4 : bitstream + 8], "little")
        for position in range(bitstream + 8 + 5, bitstream + 8 + length):  # past VP8L's own header
            broken[position] ^= 0xFF
        chunk = broken.find(b"ANMF", chunk + 8 + int.from_bytes(broken[chunk + 4 : chunk + 8], "little"))
    return bytes(broken)


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP", "TIFF"])
def test_only_the_first_frame_is_decoded(image_format):
    content = animation_with_later_frames_broken(image_format)
    with pytest.raises((OSError, EOFError, ValueError)):  # the later frames really are broken
        later = Image.open(io.BytesIO(content))
        later.seek(5)
        later.load()

    image = decode_image(content, limits=LIMITS)

    assert np.array_equal(image.bgr, np.zeros((100, 200, 3), np.uint8))  # the first frame, black


@pytest.mark.parametrize(
    ("image_format", "size"),
    [
        ("PNG", (65_600, 20)),
        ("PNG", (100_000, 1)),
        ("PNG", (1, 65_501)),
        ("TIFF", (70_000, 2)),
        ("BMP", (65_536, 1)),
        ("GIF", (2, 65_535)),
    ],
)
def test_it_refuses_a_side_longer_than_a_jpeg_can_have(image_format, size):
    content = encode(Image.new("L", size), image_format)

    with pytest.raises(ImageTooLarge, match="a side may be at most 65500 pixels"):
        open_image(content, limits=LIMITS)


def test_the_longest_side_a_jpeg_can_have_is_accepted():
    image = decode_image(encode(Image.new("L", (MAX_SIDE, 2)), "PNG"), limits=LIMITS)

    assert Image.open(io.BytesIO(encode_jpeg(image.bgr))).size == (MAX_SIDE, 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoding-limits")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as server:
        yield server


COSTLY, TOO_LARGE = (422, "image_too_costly_to_decode"), (413, "image_too_large")
HOSTILE_UPLOADS = {
    "progressive JPEG, 1,000 repeated scans": (lambda: progressive_jpeg_with_repeated_scans(2000, 1000), COSTLY),
    "GIF of 6 megapixels": (lambda: TINY_HUGE["GIF"](Image.new("RGB", (3000, 2000))), COSTLY),
    "WebP of 6 megapixels": (lambda: TINY_HUGE["WEBP"](Image.new("RGB", (3000, 2000))), COSTLY),
    "PNG of 65,600x20": (lambda: encode(Image.new("L", (65_600, 20)), "PNG"), TOO_LARGE),
    "TIFF of 100,000x1": (lambda: encode(Image.new("L", (100_000, 1)), "TIFF"), TOO_LARGE),
}


@pytest.mark.parametrize("name", list(HOSTILE_UPLOADS))
def test_the_server_answers_a_costly_upload_with_a_json_4xx_at_once(server, http, astronaut_jpeg, name):
    make, (status, code) = HOSTILE_UPLOADS[name]
    content = make()

    started = time.perf_counter()
    response = http.post(server.base_url + "/image", files={"image": ("x", content)}, timeout=30)
    elapsed = time.perf_counter() - started

    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert elapsed < 2, elapsed
    assert http.post(server.base_url + "/image", files={"image": ("a.jpg", astronaut_jpeg)}, timeout=30).ok
