"""Judging an uploaded video file before any work: its container and codec from the bytes (never the
client's content type or name), its size, duration and orientation, against the limits. Pure video
work: no Django, no storage.
"""

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream

from vision.errors import CorruptVideo, UnsupportedVideoFormat, VideoEmpty, VideoTooLarge
from vision.video import FILE_OPTIONS

VIDEO_FORMATS_TEXT = "MP4, MOV, MKV, WebM or AVI"
# FFmpeg's demuxer names we accept (each covers a family: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm").
# Anything else FFmpeg reads (an image, a WAV, a playlist naming other files) is not an upload of ours.
DEMUXERS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"}
# The first bytes of each family: a file that starts like one of them but that FFmpeg cannot read is
# a damaged video (400), anything else is another kind of file (415).
ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}  # MP4 / MOV: [size][type]
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML header: MKV and WebM
RIFF_MAGIC, AVI_MAGIC = b"RIFF", b"AVI "
# WebM is Matroska restricted to these codecs; FFmpeg names both one demuxer.
WEBM_VIDEO_CODECS = {"vp8", "vp9", "av1"}
WEBM_AUDIO_CODECS = {"opus", "vorbis"}
# Seconds FFmpeg may spend opening the file, then on each read (a file on a stalled network disk).
OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 10.0


# Frames a second past which a video is refused (phones' slow motion is 240). The work is per frame, not
# per second: without it a 16x16 video at 1000 fps (13 bytes a frame) costs 2 ms of CPU a frame, half
# an hour for a 10 MB upload of 600 s.
MAX_FPS = 240.0
# H.264's 4:2:0 needs even sides: a 1-pixel side is cropped to nothing.
MIN_SIDE = 2


@dataclass(frozen=True)
class VideoLimits:
    max_seconds: float
    max_pixels: int  # width * height, e.g. 3840 * 2160
    max_fps: float = MAX_FPS

    @property
    def max_frames(self) -> int:
        return int(self.max_seconds * self.max_fps)


@dataclass(frozen=True)
class VideoInfo:
    container: str  # short name: "mp4", "mov", "matroska", "webm", "avi"
    codec: str  # FFmpeg's video codec name, "h264"
    width: int  # as displayed, after rotation
    height: int
    rotation: int  # degrees clockwise the player turns the stored frames: 0, 90, 180, 270
    fps: float  # average frame rate
    frames: int  # frame count (the container's, else estimated from duration * fps)
    seconds: float  # duration
    has_audio: bool

    def as_json(self) -> dict:
        return {
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "fps": self.fps,
            "frames": self.frames,
            "seconds": self.seconds,
            "has_audio": self.has_audio,
        }


def looks_like_video(head: bytes) -> bool:
    """Whether the file's first bytes are those of a container we read (see DEMUXERS)."""
    return (
        head[4:8] in ISO_BOXES
        or head.startswith(MATROSKA_MAGIC)
        or (head.startswith(RIFF_MAGIC) and head[8:12] == AVI_MAGIC)
    )


def open_video_file(path: Path) -> av.container.InputContainer:
    """The file opened for reading, after the checks its first bytes allow; FFmpeg may read nothing
    but that file (FILE_OPTIONS) and each read is bounded in time."""
    with path.open("rb") as file:
        head = file.read(12)
    if not head:
        raise VideoEmpty("The uploaded video is empty.")
    if not looks_like_video(head):
        raise UnsupportedVideoFormat(f"The file is not a video in a supported format. Send {VIDEO_FORMATS_TEXT}.")
    try:
        container = av.open(str(path), options=FILE_OPTIONS, timeout=(OPEN_TIMEOUT, READ_TIMEOUT))
    except av.FFmpegError as error:
        raise CorruptVideo(f"The video cannot be read, it is damaged or truncated ({error.strerror}).") from None
    if container.format.name not in DEMUXERS:
        container.close()
        raise UnsupportedVideoFormat(f"The file is not a video in a supported format. Send {VIDEO_FORMATS_TEXT}.")
    if not container.streams.video:
        container.close()
        raise UnsupportedVideoFormat(f"The file has no video, only sound or data. Send {VIDEO_FORMATS_TEXT}.")
    return container


def clockwise_rotation(frame: av.VideoFrame) -> int:
    """Degrees clockwise a player turns the frame (its display matrix), 0, 90, 180 or 270.
    PyAV's `rotation` is counterclockwise, in -180..180."""
    return round(-frame.rotation / 90) * 90 % 360


def frame_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return rate
    return None


def duration_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def limit_frame_size(stream: av.video.stream.VideoStream, *, limits: VideoLimits) -> None:
    """The decoder refuses frames over the pixel limit before allocating them (FFmpeg's max_pixels):
    the header's size binds no frame, and an MJPEG (or H.264 with a new SPS) 32x32 at first can go on
    with 65535x65535 frames, 19 GB of pixels from a 30 MB file. A refused frame is EINVAL
    (av.error.ArgumentError) from then on: see frame_too_large. The decoder is opened here, so that
    one that cannot open (EINVAL too) is told apart: a corrupt video."""
    context = stream.codec_context
    context.options = {**context.options, "max_pixels": str(limits.max_pixels)}
    try:
        context.open(strict=False)
    except av.FFmpegError as error:
        raise CorruptVideo(f"The video cannot be decoded ({error.strerror}).") from None


def frame_too_large(limits: VideoLimits) -> VideoTooLarge:
    return VideoTooLarge(
        f"A frame of the video is larger than its first: over the limit of {limits.max_pixels} pixels "
        "(3840x2160 is 8294400)."
    )


def check_frames(*, fps: float, frames: int, limits: VideoLimits) -> None:
    if fps > limits.max_fps:
        raise VideoTooLarge(f"The video has {fps:g} frames a second; the limit is {limits.max_fps:g}.")
    if frames > limits.max_frames:
        raise VideoTooLarge(
            f"The video has {frames} frames; the limit is {limits.max_frames} "
            f"({limits.max_seconds:g} s at {limits.max_fps:g} frames a second)."
        )


def check_limits(*, width: int, height: int, seconds: float | None, limits: VideoLimits) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise CorruptVideo(f"The video's frames are {width}x{height} pixels: too small to be a video.")
    if width * height > limits.max_pixels:
        raise VideoTooLarge(
            f"The video is {width}x{height} = {width * height} pixels a frame; the limit is {limits.max_pixels} "
            "pixels (3840x2160 is 8294400)."
        )
    if seconds is not None and seconds > limits.max_seconds:
        raise VideoTooLarge(f"The video lasts {seconds:.1f} s; the limit is {limits.max_seconds:g} s.")


def probe_video(path: Path, *, limits: VideoLimits) -> VideoInfo:
    """What the video is, judged from its bytes, and whether it is within the limits: raises
    VideoEmpty, UnsupportedVideoFormat, CorruptVideo or VideoTooLarge. Cheap: reads the headers and
    decodes the first frame only (its rotation is side data of the decoded frame)."""
    with open_video_file(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None or not context.width or not context.height:
            raise CorruptVideo("The video's frames have no size: it is damaged or in a codec that cannot be decoded.")
        seconds = duration_seconds(container, stream)
        check_limits(width=context.width, height=context.height, seconds=seconds, limits=limits)
        limit_frame_size(stream, limits=limits)
        first = first_frame(container, stream, limits=limits)
        rotation = clockwise_rotation(first)
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        check_limits(width=width, height=height, seconds=None, limits=limits)
        rate = frame_rate(stream)
        fps = float(rate) if rate else 25.0
        if seconds is None:
            seconds = stream.frames / fps if stream.frames else 0.0
        frames = stream.frames or max(1, round(seconds * fps))
        check_frames(fps=fps, frames=frames, limits=limits)
        return VideoInfo(
            container=container_name(container, video_codec=context.codec.canonical_name),
            codec=context.codec.canonical_name,
            width=width,
            height=height,
            rotation=rotation,
            fps=round(fps, 3),
            frames=frames,
            seconds=round(seconds, 3),
            has_audio=bool(container.streams.audio),
        )


def first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, *, limits: VideoLimits
) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.ArgumentError:
        raise frame_too_large(limits) from None
    except av.FFmpegError as error:
        raise CorruptVideo(f"The video cannot be decoded ({error.strerror}).") from None
    raise CorruptVideo("The video has no frames that can be decoded.")


def container_name(container: av.container.InputContainer, *, video_codec: str) -> str:
    name = container.format.name
    if name.startswith("mov"):
        # QuickTime files say so in their brand; phones' .mov files are "qt  ".
        return "mov" if container.metadata.get("major_brand", "").strip() == "qt" else "mp4"
    if name.startswith("matroska"):
        audio = {
            stream.codec_context.codec.canonical_name for stream in container.streams.audio if stream.codec_context
        }
        webm = video_codec in WEBM_VIDEO_CODECS and audio <= WEBM_AUDIO_CODECS
        return "webm" if webm else "matroska"
    return name
