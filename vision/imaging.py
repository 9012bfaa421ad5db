"""Decoding uploads and drawing the annotated copy. Pure image work: no Django, no HTTP."""

import io
import re
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from vision.errors import CorruptImage, ImageEmpty, ImageTooCostlyToDecode, ImageTooLarge, UnsupportedImageFormat
from vision.faces import Box, Face

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
# A live stream's frames: the formats a browser's canvas encodes, quick to decode.
FRAME_FORMATS = {"JPEG": "jpg", "WEBP": "webp"}
FRAME_FORMATS_TEXT = "JPEG or WebP"
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
# In a scan's data, 0xFF is followed by 0 (a stuffed byte), a restart marker or another 0xFF (fill):
# anything else is the next segment's marker.
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

# Anonymised regions reach this share of the face's box beyond each side (`make bench-detector`:
# with 20%, 84% of WIDER's hard-setting faces end at least 80% hidden at the anonymising defaults).
ANONYMISE_MARGIN = 0.2

BOX_COLOUR = (0, 200, 0)  # BGR
LANDMARK_COLOUR = (0, 0, 255)
LABEL_TEXT_COLOUR = (0, 0, 0)
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_LABEL_HEIGHT = 8  # pixels of text: smaller is unreadable, and a label that big finds no place


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
    # Each scan of a progressive JPEG is a pass over every block: encoders write 1 to 18.
    max_jpeg_scans: int


def open_image(
    data: bytes,
    *,
    limits: DecodeLimits,
    formats: dict[str, str] = SUPPORTED_FORMATS,
    formats_text: str = SUPPORTED_FORMATS_TEXT,
) -> Image.Image:
    """The checks the header allows, before a single pixel is decoded: not empty, one of `formats`
    (from the bytes, never from a name or header), a size the annotated JPEG can have, not too many
    pixels, and decoding work in proportion to the bytes sent."""
    if not data:
        raise ImageEmpty("The uploaded file is empty.")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(formats))
    except UnidentifiedImageError:
        raise UnsupportedImageFormat(f"The file is not an image in a supported format. Send {formats_text}.") from None
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
            f"The JPEG has {scans} scans; the limit is {limits.max_jpeg_scans} (encoders write 1 to 18)."
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
    """Where the next marker starts (see NEXT_MARKER)."""
    found = NEXT_MARKER.search(data, position)
    return found.start() if found else len(data)


def decode_image(
    data: bytes,
    *,
    limits: DecodeLimits,
    formats: dict[str, str] = SUPPORTED_FORMATS,
    formats_text: str = SUPPORTED_FORMATS_TEXT,
) -> DecodedImage:
    """Decode an upload once, after `open_image`'s checks."""
    image = open_image(data, limits=limits, formats=formats, formats_text=formats_text)
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


@dataclass(frozen=True)
class MarkSizes:
    """How big a face's marks are drawn, in pixels: in proportion to the face, so a small face in a
    crowd stays visible under its marks, and within the image's scale, so a large one is not shouted."""

    line: int  # box line thickness
    dot_radius: int  # landmark dots (0: a single pixel)
    text_height: int  # label text, before the label's padding


def mark_sizes(box: Box, *, long_side: int) -> MarkSizes:
    side = min(box.width, box.height)
    scale = max(2, round(long_side / 500))  # 2 up to a 1250-px photo, 12 on a 24-megapixel one
    return MarkSizes(
        # Lines of 1 pixel only for small faces: JPEG's halved colour resolution washes them out.
        line=max(1, min(scale, round(side / 30))),
        dot_radius=min(scale, side // 30),
        # A quarter of the face makes "0.93" about as wide as the face; below MIN_LABEL_HEIGHT unreadable.
        text_height=max(MIN_LABEL_HEIGHT, min(round(side / 4), 8 * scale)),
    )


def label_places(faces: list[Face], *, width: int, height: int) -> list[Box | None]:
    """Where each face's confidence label goes: just above, below or beside its box, only where it covers
    no face and no other label, inside the image; None where there is no such place (the JSON has
    the number). Larger faces choose first: their labels are the most readable."""
    long_side = max(width, height)
    boxes = np.array([(f.box.x, f.box.y, f.box.x + f.box.width, f.box.y + f.box.height) for f in faces]).reshape(-1, 4)
    taken: list[tuple[int, int, int, int]] = []  # labels placed so far, as (left, top, right, bottom)
    places: list[Box | None] = [None] * len(faces)
    for index in sorted(range(len(faces)), key=lambda i: -faces[i].box.width * faces[i].box.height):
        box = faces[index].box
        label_width, label_height = _label_size(faces[index], long_side=long_side)
        for left, top in (
            (box.x, box.y - label_height),  # above, then below: from the left edge, then the right
            (box.x + box.width - label_width, box.y - label_height),
            (box.x, box.y + box.height),
            (box.x + box.width - label_width, box.y + box.height),
            (box.x + box.width, box.y),  # beside, at the top: right, then left
            (box.x - label_width, box.y),
        ):
            left = min(max(0, left), width - label_width)
            place = (left, top, left + label_width, top + label_height)
            if left < 0 or top < 0 or top + label_height > height:
                continue
            if _overlaps(place, boxes) or _overlaps(place, np.array(taken).reshape(-1, 4)):
                continue
            taken.append(place)
            places[index] = Box(left, top, label_width, label_height)
            break
    return places


def _overlaps(rectangle: tuple[int, int, int, int], others: np.ndarray) -> bool:
    left, top, right, bottom = rectangle
    return bool(np.any((others[:, 0] < right) & (left < others[:, 2]) & (others[:, 1] < bottom) & (top < others[:, 3])))


def _label_text(face: Face) -> str:
    return f"{face.confidence:.2f}"


def _label_font(face: Face, *, long_side: int) -> tuple[float, int]:
    """Font scale and stroke for the label's text height."""
    text_height = mark_sizes(face.box, long_side=long_side).text_height
    (_, unit_height), _ = cv2.getTextSize("0", LABEL_FONT, 1.0, 1)
    return text_height / unit_height, max(1, round(text_height / 10))


def _label_size(face: Face, *, long_side: int) -> tuple[int, int]:
    font_scale, stroke = _label_font(face, long_side=long_side)
    (text_width, text_height), baseline = cv2.getTextSize(_label_text(face), LABEL_FONT, font_scale, stroke)
    return text_width + 2 * stroke + 2, text_height + baseline + 2 * stroke


def draw_faces(bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the image with each face boxed, its landmarks dotted and, where there is room, its
    confidence as a label (see label_places)."""
    annotated = bgr.copy()
    height, width = bgr.shape[:2]
    long_side = max(width, height)
    for face in faces:
        box, sizes = face.box, mark_sizes(face.box, long_side=long_side)
        cv2.rectangle(
            annotated, (box.x, box.y), (box.x + box.width - 1, box.y + box.height - 1), BOX_COLOUR, sizes.line
        )
        for x, y in face.landmarks:
            cv2.circle(annotated, (x, y), sizes.dot_radius, LANDMARK_COLOUR, -1, cv2.LINE_AA)
    # Labels last, over the boxes' lines, never over another face.
    for face, place in zip(faces, label_places(faces, width=width, height=height), strict=True):
        if place is None:
            continue
        label, (font_scale, stroke) = _label_text(face), _label_font(face, long_side=long_side)
        right, bottom = place.x + place.width - 1, place.y + place.height - 1
        cv2.rectangle(annotated, (place.x, place.y), (right, bottom), BOX_COLOUR, -1)
        (_, text_height), _ = cv2.getTextSize(label, LABEL_FONT, font_scale, stroke)
        origin = (place.x + stroke + 1, place.y + stroke + text_height)
        cv2.putText(annotated, label, origin, LABEL_FONT, font_scale, LABEL_TEXT_COLOUR, stroke, cv2.LINE_AA)
    return annotated


# Blurring works on a copy of the face this many times smaller, then enlarged back: the same look as
# blurring it whole (a mean difference under one level in 255) for 1/50th of the time. A 125-px
# kernel over a 1080p video's face took 55 ms, so a frame with a few faces cost more than encoding it.
BLUR_SHRINK = 4


def blur_faces(bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy with each face blurred beyond recognition."""
    anonymised = bgr.copy()
    anonymise_in_place(anonymised, faces, style="blur")
    return anonymised


def pixelate_faces(bgr: np.ndarray, faces: list[Face], *, blocks: int = 8) -> np.ndarray:
    """A copy with each face replaced by a mosaic about `blocks` squares across."""
    anonymised = bgr.copy()
    anonymise_in_place(anonymised, faces, style="pixelate", blocks=blocks)
    return anonymised


def anonymise_in_place(image: np.ndarray, faces: list[Face], *, style: str, blocks: int = 8) -> None:
    """Blurs or pixelates each face's region (see _face_region) of the image itself: BGR, or one
    plane of a video frame's (vision.video_pipeline)."""
    for face in faces:
        region = _face_region(image, face)
        if style == "blur":
            _blur(region)
        else:
            _pixelate(region, blocks=blocks)


def _blur(region: np.ndarray) -> None:
    height, width = region.shape[:2]
    # A kernel about half the face wide leaves no feature to recognise.
    kernel = max(3, (min(height, width) // 2) | 1)
    shrink = BLUR_SHRINK if min(height, width) >= 8 * BLUR_SHRINK else 1
    if shrink == 1:
        region[:] = cv2.GaussianBlur(region, (kernel, kernel), 0)
        return
    small = cv2.resize(region, (max(1, width // shrink), max(1, height // shrink)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (max(3, (kernel // shrink) | 1),) * 2, 0)
    region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _pixelate(region: np.ndarray, *, blocks: int) -> None:
    height, width = region.shape[:2]
    small = cv2.resize(
        region,
        (max(1, width * blocks // max(width, height)), max(1, height * blocks // max(width, height))),
        interpolation=cv2.INTER_AREA,
    )
    region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def _face_region(bgr: np.ndarray, face: Face) -> np.ndarray:
    """A writable view of the face's box, grown by ANONYMISE_MARGIN a side: hairline, ears and chin
    too, and the whole face where the detector's box is a little off."""
    box = face.box
    margin_x, margin_y = round(box.width * ANONYMISE_MARGIN), round(box.height * ANONYMISE_MARGIN)
    top, bottom = max(0, box.y - margin_y), min(bgr.shape[0], box.y + box.height + margin_y)
    left, right = max(0, box.x - margin_x), min(bgr.shape[1], box.x + box.width + margin_x)
    return bgr[top:bottom, left:right]


ANNOTATORS = {"box": draw_faces, "blur": blur_faces, "pixelate": pixelate_faces}
ANONYMISING_STYLES = {"blur", "pixelate"}


def annotate(bgr: np.ndarray, faces: list[Face], *, style: str) -> np.ndarray:
    """The annotated copy: faces boxed (`box`), or anonymised (`blur`, `pixelate`)."""
    return ANNOTATORS[style](bgr, faces)


def encode_jpeg(bgr: np.ndarray, *, quality: int = 90) -> bytes:
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the annotated image as JPEG")
    return buffer.tobytes()
