"""The annotated examples in the README (docs/examples/), from scikit-image's public-domain photos:
`make examples`. Each is annotated at full size as the server does it, then shrunk for the page."""

import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from vision.detector import detect_faces
from vision.imaging import draw_faces

OUTPUT = Path(__file__).resolve().parent / "examples"
PAGE_WIDTH = 800  # pixels wide in the README
# Heads in skimage's photos, as (x, y, width, height): the astronaut (NASA) and the cameraman.
ASTRONAUT_HEAD = (130, 10, 200, 230)
CAMERAMAN_HEAD = (80, 10, 220, 260)


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb if rgb.ndim == 3 else np.dstack([rgb] * 3), cv2.COLOR_RGB2BGR)


def head(photo: np.ndarray, box: tuple[int, int, int, int], height: int) -> np.ndarray:
    x, y, width, full_height = box
    crop = photo[y : y + full_height, x : x + width]
    return cv2.resize(crop, (round(width * height / full_height), height), interpolation=cv2.INTER_AREA)


def crowd() -> np.ndarray:
    """A stand-in for a group photo (no freely licensed one ships in a package): rows of heads,
    smaller towards the back, side by side as people stand."""
    heads = [(bgr(data.astronaut()), ASTRONAUT_HEAD), (bgr(data.camera()), CAMERAMAN_HEAD)]
    canvas = np.full((600, 1350, 3), (190, 200, 205), np.uint8)
    bottom = canvas.shape[0]
    for row, height in enumerate([200, 130, 90, 60, 42]):
        top = bottom - height
        x, index = 10 + 17 * row, row
        while True:
            face = head(*heads[index % 2], height)
            if x + face.shape[1] > canvas.shape[1]:
                break
            canvas[top:bottom, x : x + face.shape[1]] = face
            x, index = x + face.shape[1] + height // 10, index + 1
        bottom = top - height // 8
    return canvas


def megapixels_24() -> np.ndarray:
    """6000x4000: the astronaut large, and her head again at three smaller sizes."""
    canvas = cv2.resize(bgr(data.astronaut()), (6000, 6000), interpolation=cv2.INTER_CUBIC)[600:4600]
    x = 3900
    for height in (1200, 500, 200):
        face = head(bgr(data.astronaut()), ASTRONAUT_HEAD, height)
        canvas[3800 - height : 3800, x : x + face.shape[1]] = face
        x += face.shape[1] + 100
    return canvas


def save(name: str, photo: np.ndarray) -> None:
    annotated = draw_faces(photo, detect_faces(photo, min_confidence=0.7))
    scale = min(1.0, PAGE_WIDTH / annotated.shape[1])
    shown = cv2.resize(annotated, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    path = OUTPUT / f"{name}.jpg"
    cv2.imwrite(str(path), shown, [cv2.IMWRITE_JPEG_QUALITY, 75])
    print(
        f"{path}: {photo.shape[1]}x{photo.shape[0]} shown at {shown.shape[1]}x{shown.shape[0]}, "
        f"{path.stat().st_size // 1024} KB"
    )


def main() -> None:
    OUTPUT.mkdir(exist_ok=True)
    save("portrait", bgr(data.astronaut()))
    save("crowd", crowd())
    save("24-megapixels", megapixels_24())


if __name__ == "__main__":
    sys.exit(main())
