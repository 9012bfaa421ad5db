"""Video clips made from photos, for tests and benchmarks: a camera panning across a photo or
looking at it, and a clip's frames decoded back (vision.video.write_h264 encodes them as a camera
does, write_video as phones and other cameras do: any container, sound, rotation, frame timing)."""

import io
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.audio.stream
import av.container
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


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 25,
    container: str = "mp4",
    codec: str = "libx264",
    audio: str | None = None,
    audio_seconds: float = 0.0,
    rotation: int = 0,
    timestamps_ms: list[int] | None = None,
    faststart: bool = False,
    pix_fmt: str | None = None,
) -> Path:
    """A video file of BGR frames, as phones and cameras make them: `container` (FFmpeg's muxer name:
    "mp4", "mov", "matroska", "webm", "avi"), `codec` (an FFmpeg encoder), with `audio_seconds` of a
    440 Hz tone in the `audio` encoder ("aac", "pcm_s16le", "libopus", ...), turned `rotation` degrees
    clockwise on playing (display matrix: a phone held upright records its frames sideways), frames
    at `timestamps_ms` (a variable frame rate) rather than every 1/fps s, the index first (`faststart`),
    in `pix_fmt` ("yuv420p10le": 10 bits, as phones record HDR)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=options) as output:
        video = None
        sound = output.add_stream(audio, rate=48_000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        for index, bgr in enumerate(frames):
            if video is None:
                video = output.add_stream(codec, rate=fps)
                video.height, video.width = bgr.shape[:2]
                video.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")  # MJPEG: full range
                if codec == "libx264":
                    video.options = {"preset": "ultrafast"}
                elif codec == "libx265":
                    video.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
                if timestamps_ms is not None:
                    video.codec_context.time_base = Fraction(1, 1000)
                if rotation:
                    video.set_display_rotation(-rotation)  # PyAV's angle is counterclockwise
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            if timestamps_ms is not None:
                frame.pts, frame.time_base = timestamps_ms[index], Fraction(1, 1000)
            output.mux(video.encode(frame))
        if video is not None:
            output.mux(video.encode(None))
        if sound is not None:
            _write_tone(output, sound, seconds=audio_seconds)
    return path


def _write_tone(output: av.container.OutputContainer, stream: av.audio.stream.AudioStream, *, seconds: float) -> None:
    rate, chunk = 48_000, 1024
    for start in range(0, round(seconds * rate), chunk):
        wave = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(chunk) + start) / rate)).astype(np.float32)
        # Float samples: PyAV converts them to what the encoder takes.
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        output.mux(stream.encode(frame))
    output.mux(stream.encode(None))
