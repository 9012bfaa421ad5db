import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode
from vision.errors import CorruptImage, ImageEmpty, ImageTooLarge, UnsupportedImageFormat
from vision.faces import Box, Face
from vision.imaging import (
    ANONYMISE_MARGIN,
    DecodeLimits,
    blur_faces,
    decode_image,
    draw_faces,
    encode_jpeg,
    pixelate_faces,
)

LIMITS = DecodeLimits(max_pixels=50_000_000, max_pixels_per_byte=250, ratio_floor_pixels=4_000_000, max_jpeg_scans=32)


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's calling card."""
    png = encode(Image.new("RGB", (1, 1)), "PNG")
    header = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + header + struct.pack(">I", zlib.crc32(header)) + png[33:]


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "AVIF", "HEIF", "BMP", "TIFF", "GIF"])
def test_it_decodes_every_supported_format(astronaut, image_format):
    image = decode_image(encode(astronaut, image_format), limits=LIMITS)

    assert (image.width, image.height) == (512, 512)
    assert abs(image.bgr[::-1].astype(int).mean() - np.asarray(astronaut)[::-1].mean()) < 3  # the real pixels
    assert image.bgr.shape == (512, 512, 3)
    assert image.format == image_format


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_it_applies_exif_orientation(image_format):
    upright = Image.new("RGB", (300, 200), "white")
    upright.paste((255, 0, 0), (0, 0, 50, 50))  # a red square top-left, as a person sees it
    # Stored turned a quarter to the left; orientation 6 says "turn it right to display".
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6

    image = decode_image(encode(stored, image_format, exif=exif), limits=LIMITS)

    assert (image.width, image.height) == (300, 200)
    blue, green, red = image.bgr[10, 10]
    assert red > 200 and green < 60 and blue < 60


def test_it_takes_the_first_frame_of_a_gif():
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])

    image = decode_image(gif, limits=LIMITS)

    blue, green, red = image.bgr[15, 20]
    assert red > 200 and green < 60 and blue < 60


def test_it_rejects_an_empty_file():
    with pytest.raises(ImageEmpty):
        decode_image(b"", limits=LIMITS)


@pytest.mark.parametrize(
    "content",
    [b"hello, world\n" * 10, b"%PDF-1.4\n%...", b'<svg xmlns="http://www.w3.org/2000/svg"/>', bytes(range(256))],
)
def test_it_rejects_what_is_not_a_supported_image(content):
    with pytest.raises(UnsupportedImageFormat, match="JPEG, PNG, WebP, AVIF, HEIC, BMP, TIFF or GIF"):
        decode_image(content, limits=LIMITS)


def test_it_rejects_a_truncated_jpeg(astronaut_jpeg):
    with pytest.raises(CorruptImage):
        decode_image(astronaut_jpeg[:5000], limits=LIMITS)


def test_it_rejects_too_many_pixels_before_decoding():
    with pytest.raises(ImageTooLarge, match="limit is 50000000 pixels"):
        decode_image(png_claiming_size(10_000, 6_000), limits=LIMITS)


def test_it_rejects_a_decompression_bomb():
    # Far past Pillow's own bomb threshold as well as ours.
    with pytest.raises(ImageTooLarge):
        decode_image(png_claiming_size(100_000, 100_000), limits=LIMITS)


def test_drawing_keeps_the_image_size_and_marks_the_face():
    image = np.full((400, 600, 3), 255, dtype=np.uint8)
    face = Face(box=Box(100, 120, 80, 90), confidence=0.91, landmarks=((120, 150),) * 5)

    annotated = draw_faces(image, [face])

    assert annotated.shape == image.shape
    assert (annotated[120:210, 100] != 255).any()  # the left edge of the box is drawn
    assert (image == 255).all()  # the input is left alone
    decoded = Image.open(io.BytesIO(encode_jpeg(annotated)))
    assert decoded.size == (600, 400)


@pytest.mark.parametrize("anonymise", [blur_faces, pixelate_faces])
def test_anonymising_covers_a_margin_around_the_box(anonymise):
    # Fine noise everywhere: any pixel anonymised changes, any other stays.
    image = np.random.default_rng(5).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    face = Face(box=Box(150, 150, 100, 100), confidence=0.9, landmarks=((200, 200),) * 5)

    changed = (anonymise(image, [face]) != image).any(axis=2)

    margin = round(100 * ANONYMISE_MARGIN)
    inside = changed[150 - margin + 2 : 250 + margin - 2, 150 - margin + 2 : 250 + margin - 2]
    assert inside.mean() > 0.9
    outside = changed.copy()
    outside[150 - margin : 250 + margin, 150 - margin : 250 + margin] = False
    assert not outside.any()
