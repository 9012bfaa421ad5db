"""Video clips made from photos, for tests and benchmarks: a camera panning across a photo or
looking at it, and a clip's frames decoded back (vision.video.write_h264 encodes them)."""

import io
from collections.abc import Iterator

import av
import cv2
import numpy as np


def pan_frames(photo: np.ndarray, *, width: int, height: int, frames: int) -> Iterator[np.ndarray]:
    """A camera's view of a photo: the photo enlarged to cover the frame and a third more, the view
    panning across it and back, so every frame differs as a busy scene's do."""
    scale = max(width / photo.shape[1], height / photo.shape[0]) * 4 / 3
    scene = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))
    spare_x, spare_y = scene.shape[1] - width, scene.shape[0] - height
    for index in range(frames):
        phase = (1 - np.cos(2 * np.pi * index / frames)) / 2  # 0 -> 1 -> 0: the loop has no jump
        x, y = round(spare_x * phase), round(spare_y * phase)
        yield np.ascontiguousarray(scene[y : y + height, x : x + width])


def still_frames(photo: np.ndarray, *, width: int, height: int, frames: int) -> Iterator[np.ndarray]:
    """A camera looking at a photo that does not move."""
    frame = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
    for _ in range(frames):
        yield frame


def decoded_frames(clip: bytes) -> Iterator[np.ndarray]:
    """A clip's video frames, as BGR arrays, in order."""
    with av.open(io.BytesIO(clip)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def jpeg_frames(clip: bytes, *, quality: int = 80) -> list[bytes]:
    """A clip's frames as JPEGs, as a browser's canvas would send them over a live stream."""
    return [
        cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for frame in decoded_frames(clip)
    ]
