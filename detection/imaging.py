"""Decoding uploads and drawing the annotated copy. Pure image work: no Django, no HTTP."""

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from detection.errors import CorruptImage, ImageEmpty, ImageTooCostlyToDecode, ImageTooLarge, UnsupportedImageFormat
from detection.faces import Face

pillow_heif.register_heif_opener()  # HEIC photos from phones; AVIF is built into Pillow

# Pillow format name -> file extension of the stored original.
SUPPORTED_FORMATS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "AVIF": "avif",
    "HEIF": "heic",
    "BMP": "bmp",
    "TIFF": "tiff",
    "GIF": "gif",
}
# Pillow's JPEG reader names a JPEG with more pictures after the first (phones', 3D cameras') MPO.
EXTENSION_BY_FORMAT = {**SUPPORTED_FORMATS, "MPO": "jpg"}
SUPPORTED_FORMATS_TEXT = "JPEG, PNG, WebP, AVIF, HEIC, BMP, TIFF or GIF"
CONTENT_TYPE_BY_EXTENSION = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "heic": "image/heic",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "gif": "image/gif",
}

# The longest side libjpeg writes (JPEG_MAX_DIMENSION), hence the annotated copy's.
MAX_SIDE = 65_500

# JPEG markers: start of scan, end of image; standalone markers (no length) other than EOI.
SOS, EOI = 0xDA, 0xD9
STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}

BOX_COLOUR = (0, 200, 0)  # BGR
LANDMARK_COLOUR = (0, 0, 255)
LABEL_TEXT_COLOUR = (0, 0, 0)


@dataclass(frozen=True)
class DecodedImage:
    bgr: np.ndarray  # as a person sees it: EXIF orientation applied
    format: str  # Pillow's format name, one of EXTENSION_BY_FORMAT

    @property
    def width(self) -> int:
        return self.bgr.shape[1]

    @property
    def height(self) -> int:
        return self.bgr.shape[0]


@dataclass(frozen=True)
class DecodeLimits:
    """How much decoding work one upload may cost, all checked before a pixel is decoded."""

    max_pixels: int
    # Decompression ratio: an image above `ratio_floor_pixels` needs a byte per this many pixels.
    max_pixels_per_byte: int
    ratio_floor_pixels: int
    # Each scan of a progressive JPEG is a pass over every block: real encoders write 10 or so.
    max_jpeg_scans: int


def open_image(data: bytes, *, limits: DecodeLimits) -> Image.Image:
    """The checks the header allows, before a single pixel is decoded: not empty, a supported
    format (from the bytes, never from a name or header), a size the annotated JPEG can have,
    not too many pixels, and decoding work in proportion to the bytes sent."""
    if not data:
        raise ImageEmpty("The uploaded file is empty.")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(SUPPORTED_FORMATS))
    except UnidentifiedImageError:
        raise UnsupportedImageFormat(
            f"The file is not an image in a supported format. Send {SUPPORTED_FORMATS_TEXT}."
        ) from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"The image has far more pixels than the limit of {limits.max_pixels}.") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise CorruptImage(f"The image header cannot be read ({error}).") from None

    # The header gives the size: refuse before decoding a single pixel.
    width, height = image.size
    if width == 0 or height == 0:
        raise CorruptImage("The image has no pixels.")
    if max(width, height) > MAX_SIDE:
        raise ImageTooLarge(f"The image is {width}x{height} pixels; a side may be at most {MAX_SIDE} pixels.")
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} = {pixels} pixels; the limit is {limits.max_pixels} pixels."
        )
    if pixels > limits.ratio_floor_pixels and pixels > limits.max_pixels_per_byte * len(data):
        raise ImageTooCostlyToDecode(
            f"The image is {width}x{height} = {pixels} pixels from only {len(data)} bytes; above "
            f"{limits.ratio_floor_pixels} pixels an image needs a byte per {limits.max_pixels_per_byte} pixels "
            "(no photo is compressed that far, decompression bombs are)."
        )
    if image.format in ("JPEG", "MPO") and (scans := jpeg_scan_count(data)) > limits.max_jpeg_scans:
        raise ImageTooCostlyToDecode(
            f"The JPEG has {scans} scans; the limit is {limits.max_jpeg_scans} (encoders write about 10)."
        )
    return image


def jpeg_scan_count(data: bytes) -> int:
    """The scans (SOS markers) of a JPEG's first picture, found by walking its segments: their
    lengths skip metadata, such as an EXIF thumbnail with scans of its own. Counting stops where
    the bytes stop making sense; the decoder will say what is wrong with them."""
    position, scans = 2, 0  # after SOI
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte before a marker
            position += 1
        elif marker == EOI:
            break
        elif marker in STANDALONE_MARKERS:
            position += 2
        else:
            position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
            if marker == SOS:
                scans += 1
                position = _end_of_entropy_coded_data(data, position)
    return scans


def _end_of_entropy_coded_data(data: bytes, position: int) -> int:
    """Where the next marker starts: in a scan's data, 0xFF is followed by 0 (a stuffed byte) or a
    restart marker, anything else is the next segment."""
    while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
        follower = data[position + 1]
        if follower != 0 and follower != 0xFF and not 0xD0 <= follower <= 0xD7:
            return position
        position += 1
    return len(data)


def decode_image(data: bytes, *, limits: DecodeLimits) -> DecodedImage:
    """Decode an upload once, after `open_image`'s checks."""
    image = open_image(data, limits=limits)
    image_format = image.format
    try:
        image.load()  # for a GIF, the first frame
        # In place and only when needed: each copy of a 24-megapixel photo costs ~100 ms.
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode != "RGB":
            image = image.convert("RGB")
        rgb = np.asarray(image)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise CorruptImage(f"The image is corrupt or truncated and cannot be decoded ({error}).") from None
    return DecodedImage(bgr=cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), format=image_format)


def draw_faces(bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the image with each face boxed, its landmarks dotted and its confidence as a label."""
    annotated = bgr.copy()
    long_side = max(bgr.shape[:2])
    # Sizes scale with the image so the marks read the same on a thumbnail and on a 24 MP photo.
    thickness = max(2, round(long_side / 400))
    font_scale = max(0.5, long_side / 1400)
    dot_radius = max(2, round(long_side / 350))
    for face in faces:
        box = face.box
        cv2.rectangle(annotated, (box.x, box.y), (box.x + box.width, box.y + box.height), BOX_COLOUR, thickness)
        for x, y in face.landmarks:
            cv2.circle(annotated, (x, y), dot_radius, LANDMARK_COLOUR, -1, cv2.LINE_AA)
        label = f"{face.confidence:.2f}"
        (text_width, text_height), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        label_top = max(0, box.y - text_height - baseline - thickness)
        cv2.rectangle(
            annotated,
            (box.x, label_top),
            (box.x + text_width + thickness, label_top + text_height + baseline + thickness),
            BOX_COLOUR,
            -1,
        )
        cv2.putText(
            annotated,
            label,
            (box.x + thickness // 2, label_top + text_height + thickness // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            LABEL_TEXT_COLOUR,
            max(1, thickness // 2),
            cv2.LINE_AA,
        )
    return annotated


def blur_faces(bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy with each face blurred beyond recognition."""
    anonymised = bgr.copy()
    for face in faces:
        region = _face_region(anonymised, face)
        # A kernel about half the face wide leaves no feature to recognise.
        kernel = max(3, (min(region.shape[:2]) // 2) | 1)
        region[:] = cv2.GaussianBlur(region, (kernel, kernel), 0)
    return anonymised


def pixelate_faces(bgr: np.ndarray, faces: list[Face], *, blocks: int = 8) -> np.ndarray:
    """A copy with each face replaced by a mosaic about `blocks` squares across."""
    anonymised = bgr.copy()
    for face in faces:
        region = _face_region(anonymised, face)
        height, width = region.shape[:2]
        small = cv2.resize(
            region,
            (max(1, width * blocks // max(width, height)), max(1, height * blocks // max(width, height))),
            interpolation=cv2.INTER_AREA,
        )
        region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    return anonymised


def _face_region(bgr: np.ndarray, face: Face) -> np.ndarray:
    """A writable view of the face's box, grown by 10% a side so the hairline and chin are covered too."""
    box = face.box
    margin_x, margin_y = box.width // 10, box.height // 10
    top, bottom = max(0, box.y - margin_y), min(bgr.shape[0], box.y + box.height + margin_y)
    left, right = max(0, box.x - margin_x), min(bgr.shape[1], box.x + box.width + margin_x)
    return bgr[top:bottom, left:right]


ANNOTATORS = {"box": draw_faces, "blur": blur_faces, "pixelate": pixelate_faces}


def annotate(bgr: np.ndarray, faces: list[Face], *, style: str) -> np.ndarray:
    """The annotated copy: faces boxed (`box`), or anonymised (`blur`, `pixelate`)."""
    return ANNOTATORS[style](bgr, faces)


def encode_jpeg(bgr: np.ndarray, *, quality: int = 90) -> bytes:
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the annotated image as JPEG")
    return buffer.tobytes()
