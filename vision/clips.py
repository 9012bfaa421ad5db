"""Video clips made from photos, for tests and benchmarks: a camera panning across each photo,
encoded as H.264 with PyAV (FFmpeg), and the frames decoded back."""

import io
from collections.abc import Iterable, Iterator

import av
import cv2
import numpy as np

# The share of the photo's width (or height) the window shows: room to pan, faces still large.
WINDOW_SHARE = 0.75


def panning_frames(photo: np.ndarray, *, width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """`count` BGR frames of `width` x `height`: a window of the frame's shape, WINDOW_SHARE of the
    photo, moving from the photo's top left to its bottom right."""
    photo_height, photo_width = photo.shape[:2]
    window_width = min(photo_width, photo_height * width / height) * WINDOW_SHARE
    window_height = window_width * height / width
    for index in range(count):
        progress = index / max(count - 1, 1)
        left = round((photo_width - window_width) * progress)
        top = round((photo_height - window_height) * progress)
        window = photo[top : top + round(window_height), left : left + round(window_width)]
        yield cv2.resize(window, (width, height), interpolation=cv2.INTER_AREA)


def h264_clip(frames: Iterable[np.ndarray], *, fps: int = 25, keyframe_interval: int | None = None) -> bytes:
    """BGR frames (all of one size) as an H.264 MP4 (yuv420p), in memory; a keyframe every
    `keyframe_interval` frames (default: the encoder's)."""
    output = io.BytesIO()
    with av.open(output, "w", format="mp4") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast"}
                if keyframe_interval:
                    stream.codec_context.gop_size = keyframe_interval
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return output.getvalue()


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
