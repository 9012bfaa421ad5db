"""Reading video with PyAV (FFmpeg): network cameras (RTSP, HTTP MJPEG) and files, sampled at a few
frames per second; and writing H.264 clips. Pure video work: no Django, no storage.

Decoding is most of what watching a camera costs: a 1080p 25 fps H.264 stream takes 16 to 18% of a
core to decode in full (`make bench-cameras`, README). A sample needs only its own frame and the
frames it is predicted from, back to the last keyframe; `sampled_frames` decodes nothing else. A
group of pictures (keyframe to keyframe) with no sample due is not decoded at all, one whose samples
are taken is left at its last sample, and a keyframe close to a sample's time stands in for it: at
2 fps a stream with a keyframe every 0.5 s or less is decoded keyframes only (10% of a core instead
of 17.5%), one with a keyframe a second up to its middle (11% instead of 16%: keyframes cost ten
times a predicted frame).
"""

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import numpy as np

from vision.errors import VideoStalled, VideoUnavailable

# A camera's samples that fall further than this behind the stream (a machine too busy to keep up)
# are dropped until the decoder catches up, rather than piling up as latency.
MAX_LAG_SECONDS = 2.0
# Damaged packets in a row past which a stream is given up as undecodable (4 s at 25 fps).
MAX_UNDECODABLE_PACKETS = 100
# What FFmpeg may open for each kind of URL, so that a stream cannot lead it anywhere else (an HLS
# playlist served as a "camera" naming file:// URLs, say). RTSP over TCP (interleaved): no UDP ports
# to open, and no packets lost on the way, which H.264 turns into smeared frames until the next keyframe.
RTSP_OPTIONS = {"rtsp_transport": "tcp", "protocol_whitelist": "rtsp,rtsps,tcp,tls,udp,rtp"}
HTTP_OPTIONS = {"protocol_whitelist": "http,https,tcp,tls"}
FILE_OPTIONS = {"protocol_whitelist": "file"}
OPTIONS_BY_SCHEME = {
    "rtsp": RTSP_OPTIONS,
    "rtsps": RTSP_OPTIONS,
    "http": HTTP_OPTIONS,
    "https": HTTP_OPTIONS,
    "file": FILE_OPTIONS,
}
SUPPORTED_URLS_TEXT = "rtsp://, rtsps://, http://, https:// (MJPEG or any stream FFmpeg reads), or a file path"


@dataclass(frozen=True)
class SampledFrame:
    bgr: np.ndarray
    seconds: float  # since the first frame read, by the stream's timestamps (the wall clock without them)


def url_scheme(url: str) -> str:
    """ "rtsp" for rtsp://..., "file" for a path."""
    return url.partition("://")[0].lower() if "://" in url else "file"


def open_video(url: str, *, open_timeout: float = 10, read_timeout: float = 10) -> av.container.InputContainer:
    """An rtsp:// or http(s):// stream, or a file (a path, or file://), opened for reading its first
    video stream; other protocols are refused.

    PyAV's timeouts (an FFmpeg interrupt callback) bound opening, then each read, for every protocol:
    FFmpeg's own socket options do not (a file or pipe has none), and its RTSP `timeout` reports a
    silent server as "Invalid data". Raises VideoUnavailable saying why (refused, not found, not
    video), or VideoStalled when nothing answers within `open_timeout` seconds.
    """
    scheme = url_scheme(url)
    if scheme not in OPTIONS_BY_SCHEME:
        raise VideoUnavailable(f"Cannot open {scheme}:// URLs: {SUPPORTED_URLS_TEXT}.")
    options = OPTIONS_BY_SCHEME[scheme]
    started = time.monotonic()
    try:
        container = av.open(url, options=options, timeout=(open_timeout, read_timeout))
    except av.error.ExitError as error:  # the interrupt callback: no answer in time
        raise VideoStalled(f"No answer within {open_timeout:g} s.") from error
    except av.FFmpegError as error:
        if time.monotonic() - started >= open_timeout:  # RTSP reports its interrupted handshake as bad data
            raise VideoStalled(f"No answer within {open_timeout:g} s.") from error
        raise VideoUnavailable(f"Cannot open the stream: {error.strerror}.") from error
    if not container.streams.video:
        container.close()
        raise VideoUnavailable("Cannot open the stream: it has no video.")
    return container


def sampled_frames(
    container: av.container.InputContainer,
    *,
    fps: float,
    realtime: bool = True,
    decode_all: bool = False,
    threads: int = 1,
) -> Iterator[SampledFrame]:
    """The video's frames `fps` times per second of video, by their timestamps, as BGR arrays,
    until the video ends. Raises VideoStalled when a read gets nothing within the read timeout.

    `realtime`: the video is watched as it plays (a camera, or a file standing in for one): a file is
    read no faster than it plays, and samples more than MAX_LAG_SECONDS behind are dropped. Without
    it a file is read as fast as it decodes. `decode_all` decodes every frame, as a plain decoder
    would, for the same samples (what skipping saves, `make bench-cameras`). `threads`: one per
    decoder, as several cameras share the cores and FFmpeg's threads only add their overhead (12%
    more CPU time decoding a 1080p stream with as many threads as cores).
    """
    stream = container.streams.video[0]
    stream.codec_context.thread_count = threads
    clock = _StreamClock()
    schedule = _Schedule(interval=1 / fps)
    keyframe_at: float | None = None  # the last keyframe's time
    keyframe_spacing: float | None = None  # the time between the last two
    skipping = False  # to the next keyframe: no sample is wanted before it
    undecodable = 0  # packets in a row the decoder refused
    try:
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                seconds = clock.seconds(packet.pts, packet.time_base)
                if keyframe_at is not None and seconds > keyframe_at:
                    keyframe_spacing = seconds - keyframe_at
                keyframe_at = seconds
                skipping = (
                    keyframe_spacing is not None
                    and not schedule.takes(seconds, keyframe=True)
                    and not schedule.wants_before(seconds + keyframe_spacing)
                )
            if skipping and not decode_all:
                continue
            try:
                frames = stream.decode(packet)
                undecodable = 0
            except av.error.InvalidDataError:
                # A packet damaged on the way (or cut by the stream's start): the decoder conceals what
                # depends on it until the next keyframe. Only a stream of nothing else is given up.
                undecodable += 1
                if undecodable > MAX_UNDECODABLE_PACKETS:
                    raise VideoUnavailable("The stream cannot be decoded: its packets are all damaged.") from None
                continue
            for frame in frames:
                seconds = clock.seconds(frame.pts, frame.time_base)
                # Decoding all, the frames skipping would not decode are not looked at either: the same samples.
                if skipping or not schedule.takes(seconds, keyframe=frame.key_frame):
                    continue
                schedule.take(seconds, keyframe=frame.key_frame)
                if keyframe_at is not None and keyframe_spacing is not None:
                    skipping = not schedule.wants_before(keyframe_at + keyframe_spacing)
                if realtime and clock.too_late(seconds, catching_up_by=schedule.interval / 4):
                    continue
                yield SampledFrame(bgr=frame.to_ndarray(format="bgr24"), seconds=seconds)
    except av.error.ExitError as error:
        raise VideoStalled("The stream stalled: no data within the read timeout.") from error
    except av.FFmpegError as error:
        raise VideoUnavailable(f"The stream failed: {error.strerror}.") from error


class _Schedule:
    """When the next sample is due. A keyframe within a quarter interval of it, before or after, is
    taken instead of the frame on time: it alone needs no other frame decoded."""

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self.tolerance = interval / 4
        self.next_due: float | None = None

    def takes(self, seconds: float, *, keyframe: bool) -> bool:
        if self.next_due is None:
            return True
        return seconds >= self.next_due - (self.tolerance if keyframe else 0)

    def take(self, seconds: float, *, keyframe: bool) -> None:
        if keyframe or self.next_due is None or seconds >= self.next_due + self.interval:
            # In step with the keyframes, so that the next may stand in too; or the first, or after a gap.
            self.next_due = seconds + self.interval
        else:
            self.next_due += self.interval

    def wants_before(self, keyframe_seconds: float) -> bool:
        """Whether a sample is due before a keyframe at `keyframe_seconds` and too early to wait for it."""
        return self.next_due is None or self.next_due + self.tolerance < keyframe_seconds


class _StreamClock:
    """Seconds since the first frame read: by the stream's timestamps where it has them (a camera's
    start at any value), by the wall clock where it does not. Keeps a realtime reader at the video's pace."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first: float | None = None
        self.late_by: float | None = None  # the last frame dropped for being late, that much

    def wall_seconds(self) -> float:
        return time.monotonic() - self.started

    def seconds(self, pts: int | None, time_base: Fraction | None) -> float:
        if pts is None or time_base is None:
            return self.wall_seconds()
        value = float(pts * time_base)
        if self.first is None:
            self.first = value
            self.started = time.monotonic()
        return value - self.first

    def too_late(self, seconds: float, *, catching_up_by: float) -> bool:
        """Whether the frame `seconds` into the video is too late to look at (the reader fell behind:
        drop it, and decode on to catch up); a file read ahead of its own pace waits for it instead.
        A stream that is no less late than at the last frame dropped is not catching up: it paused
        and plays on in real time from there, and that is its pace from now on."""
        lag = self.wall_seconds() - seconds
        if lag < 0:
            time.sleep(-lag)
        if lag <= MAX_LAG_SECONDS:
            self.late_by = None
            return False
        if self.late_by is None or lag < self.late_by - catching_up_by:
            self.late_by = lag
            return True
        self.started += lag
        self.late_by = None
        return False


def write_h264(
    destination: Path | BinaryIO,
    frames: Iterable[np.ndarray],
    *,
    fps: int,
    keyframe_interval: int,
    preset: str = "veryfast",
) -> None:
    """An H.264 MP4 of BGR frames (all the first one's size), as cameras send it: no B-frames, a
    keyframe every `keyframe_interval` frames; to a file, or a file object (io.BytesIO)."""
    target = str(destination) if isinstance(destination, Path) else destination
    with av.open(target, "w", format="mp4") as output:
        stream = None
        for bgr in frames:
            if stream is None:
                stream = output.add_stream("libx264", rate=fps)
                stream.height, stream.width = bgr.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.gop_size = keyframe_interval
                stream.codec_context.max_b_frames = 0
                # Fixed spacing: no extra keyframes at scene cuts.
                stream.options = {"preset": preset, "keyint_min": str(keyframe_interval), "sc_threshold": "0"}
            output.mux(stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")))
        if stream is not None:
            output.mux(stream.encode(None))
