"""The work of one video: every frame decoded, its faces found (every Nth frame) and followed
(vision.tracking), boxed or anonymised (vision.imaging), and encoded again as an H.264 MP4 that
plays in every browser, with the audio kept. Pure video work: no Django, no storage.

Three threads, each on what releases the GIL most of its time: decoding (FFmpeg), detection and
tracking (onnxruntime), drawing and encoding (OpenCV, x264), joined by short queues, so memory is
bounded whatever the video's length: the queues, the tracker's lookahead and the codecs' own buffers.
Frames travel as the codecs' own 4:2:0 planes (I420, half a BGR frame's bytes): only the frames the
detector looks at are made BGR, and faces are blurred or pixelated on the planes themselves (both are
linear, so the same as on BGR); boxes are drawn in BGR.
"""

import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Protocol

import av
import av.audio.stream
import av.container
import cv2
import numpy as np

from vision.errors import CorruptVideo, InvalidParameter, VideoCancelled, VideoTooLarge
from vision.faces import Box, Face
from vision.imaging import ANONYMISING_STYLES, annotate, anonymise_in_place, encode_jpeg
from vision.profiles import MAX_DETECT_EVERY
from vision.tracking import FaceTracker, Track, TrackedBox, detection_floor
from vision.video_files import (
    VideoInfo,
    VideoLimits,
    clockwise_rotation,
    frame_rate,
    frame_too_large,
    limit_frame_size,
    open_video_file,
    probe_video,
)


class FindFaces(Protocol):
    """The detector as the caller sets it up (profile, threads, minimum face size): the faces in an
    upright BGR frame down to `min_confidence`."""

    def __call__(self, bgr: np.ndarray, *, min_confidence: float) -> list[Face]: ...


# x264's speed preset and quality. CPU per 1080p frame on one thread, bits at crf 23, PSNR of Y, on
# a pan over a dev photo: ultrafast 18 ms, 4.2 Mbit/s, 41.9 dB; superfast 26 ms, 4.4 Mbit/s, 45.0 dB;
# veryfast 34 to 46 ms, 2.7 Mbit/s, 42.9 dB. Encoding is most of a video's work: with ultrafast the
# whole pipeline (fast profile, every 2nd frame detected) ran 1080p at 32 fps on two cores, 720p at 50,
# where superfast ran 22 and 37 (under real time); 42 dB is still a faithful copy.
X264_PRESET = "ultrafast"
X264_CRF = 23
# Audio codecs an MP4 holds that every browser plays: copied as they are; any other is made AAC.
COPIED_AUDIO = {"aac", "mp3"}
AAC_BIT_RATE = 160_000
# Frames waiting between two threads: enough to keep each busy, few enough to bound memory
# (a 1080p I420 frame is 3 MB; from 2 to 6 a 1080p job's peak RSS grew 20 MB).
QUEUE_FRAMES = 4
# How often should_stop is asked, in seconds.
STOP_POLL_SECONDS = 1.0
# Undecodable packets in a row past which the video is given up as corrupt.
MAX_UNDECODABLE_PACKETS = 50
# Audio packets read ahead of the frames they go with, past which a file is refused: a well-muxed
# file interleaves them a second or so apart (50 packets); 10 000 is minutes of AAC.
MAX_WAITING_AUDIO_PACKETS = 10_000
# A file declaring this many frames more than decode is truncated (a few lost at the end are not).
MISSING_FRAMES_TOLERANCE = 0.02
FULL_RANGE = 2  # AVCOL_RANGE_JPEG: 0 to 255, where video is 16 to 235
ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class VideoProgress:
    frames_done: int
    frames_total: int
    fps: float  # frames processed a second, so far
    seconds_left: float | None  # None until a speed is known


@dataclass(frozen=True)
class ProcessedVideo:
    info: VideoInfo  # of the input
    frames: int  # frames written (the input's)
    tracks: list[Track]
    poster_jpeg: bytes  # a frame of the output (annotated)
    # CPU seconds of each stage ("decode", "detect", "track", "draw", "encode"), in its own thread
    # (codecs' own threads not counted): where the time goes, for `make bench-video`.
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def faces_json(self) -> dict:
        return {
            "fps": self.info.fps,
            "frames": self.frames,
            "width": self.info.width,
            "height": self.info.height,
            "tracks": [track.as_json() for track in self.tracks],
        }


@dataclass
class _Frame:
    index: int
    pts: int
    duration: int
    yuv: np.ndarray  # I420: (height * 3 / 2, width), upright
    boxes: list[TrackedBox] | None = None


_END = object()  # the last item through a queue


class _Stopped(Exception):
    """Another thread failed or the job was cancelled: this one ends quietly."""


class _Pipe:
    """A bounded queue whose waits give up when the pipeline is stopping."""

    def __init__(self, stopping: threading.Event) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self.stopping = stopping

    def put(self, item: object) -> None:
        while True:
            if self.stopping.is_set():
                raise _Stopped
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self) -> object:
        while True:
            if self.stopping.is_set():
                raise _Stopped
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                continue


def process_video(
    source: Path,
    destination: Path,
    *,
    find_faces: FindFaces,
    min_confidence: float,
    style: str,
    detect_every: int,
    limits: VideoLimits,
    on_progress: Callable[[VideoProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads: int = 0,
) -> ProcessedVideo:
    """Writes `destination` (.mp4): the video with its faces boxed, blurred or pixelated (`style`) in
    every frame, H.264 yuv420p with the index first (fast start), the same frames with the same
    timestamps (so the same fps and duration, a variable frame rate kept), turned upright (a phone's
    rotation applied to the pixels), the audio copied where an MP4 holds its codec for every browser,
    else re-encoded to AAC. An odd width or height is scaled a pixel smaller (H.264's 4:2:0 needs
    even sides).

    `find_faces` runs on every `detect_every`-th frame (and the last), upright BGR; tracking covers
    the frames between. A face at `min_confidence` or more starts a track, a weaker one may keep a
    track going (vision.tracking). `on_progress` is called after every frame (callers throttle), `should_stop`
    about once a second, from the calling thread; it returning True raises VideoCancelled. Raises
    the DetectionError of what is wrong with the file; on any failure `destination` is removed.
    """
    if not 1 <= detect_every <= MAX_DETECT_EVERY:
        raise InvalidParameter(f"detect_every must be a whole number from 1 to {MAX_DETECT_EVERY}.")
    try:
        info = probe_video(source, limits=limits)
        return _Job(
            source,
            destination,
            info=info,
            find_faces=find_faces,
            min_confidence=min_confidence,
            style=style,
            detect_every=detect_every,
            limits=limits,
            threads=threads,
        ).run(on_progress=on_progress, should_stop=should_stop)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


class _Job:
    def __init__(
        self,
        source: Path,
        destination: Path,
        *,
        info: VideoInfo,
        find_faces: FindFaces,
        min_confidence: float,
        style: str,
        detect_every: int,
        limits: VideoLimits,
        threads: int,
    ) -> None:
        self.source, self.destination, self.info = source, destination, info
        self.find_faces = partial(find_faces, min_confidence=detection_floor(min_confidence))
        self.style, self.limits, self.threads = style, limits, threads
        self.detect_every = detect_every
        # Even sides for 4:2:0.
        self.width, self.height = info.width - info.width % 2, info.height - info.height % 2
        self.tracker = FaceTracker(
            width=self.width, height=self.height, detect_every=self.detect_every, min_confidence=min_confidence
        )
        self.stopping = threading.Event()
        self.decoded = _Pipe(self.stopping)
        self.tracked = _Pipe(self.stopping)
        self.audio: queue.Queue = queue.Queue()  # packets, few: the decoder runs only QUEUE_FRAMES ahead
        self.errors: list[BaseException] = []
        self.frames_written = 0
        self.frames_decoded = 0
        self.poster: bytes | None = None
        self.poster_frame = max(0, info.frames // 3)
        self.cpu_seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            self.cpu_seconds[stage] += time.thread_time() - started

    # The calling thread: detection and tracking, progress and cancelling.

    def run(
        self,
        *,
        on_progress: Callable[[VideoProgress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> ProcessedVideo:
        with open_video_file(self.source) as container:
            workers = [
                threading.Thread(target=self._guarded, args=(self._decode, container), name="video-decode"),
                threading.Thread(target=self._guarded, args=(self._encode, container), name="video-encode"),
            ]
            for worker in workers:
                worker.start()
            started = time.monotonic()
            last_poll = started - STOP_POLL_SECONDS  # asked at the first frame, then every second
            try:
                for _ in self._detect_and_track():
                    now = time.monotonic()
                    if should_stop is not None and now - last_poll >= STOP_POLL_SECONDS:
                        last_poll = now
                        if should_stop():
                            raise VideoCancelled()
                    if on_progress is not None:
                        on_progress(self._progress(started))
            except _Stopped:
                pass
            except BaseException as error:
                self.errors.insert(0, error)
                self.stopping.set()
            for worker in workers:
                worker.join()
        if self.errors:
            raise self.errors[0]
        if on_progress is not None:
            on_progress(self._progress(started))
        return ProcessedVideo(
            info=self.info,
            frames=self.frames_written,
            tracks=self.tracker.tracks,
            poster_jpeg=self.poster or b"",
            cpu_seconds={stage: round(seconds, 3) for stage, seconds in self.cpu_seconds.items()},
        )

    def _progress(self, started: float) -> VideoProgress:
        done, elapsed = self.frames_written, time.monotonic() - started
        total = max(self.info.frames, self.frames_decoded)
        fps = done / elapsed if elapsed > 0 else 0.0
        return VideoProgress(
            frames_done=done,
            frames_total=total,
            fps=round(fps, 2),
            seconds_left=round((total - done) / fps, 1) if fps > 0 and done else None,
        )

    def _detect_and_track(self) -> Iterator[None]:
        """Detects every Nth frame and the last, and hands each frame on with its boxes once the
        tracker has seen far enough past it; yields after each frame decoded."""
        waiting: deque[_Frame] = deque()
        last_detected = -1
        while (item := self.decoded.get()) is not _END:
            frame: _Frame = item  # type: ignore[assignment]
            if frame.index % self.detect_every == 0:
                self._detect(frame)
                last_detected = frame.index
            waiting.append(frame)
            while waiting and self.tracker.ready(waiting[0].index):
                self._hand_on(waiting.popleft())
            yield
        if waiting and last_detected != waiting[-1].index:
            self._detect(waiting[-1])
        self.tracker.finish()
        while waiting:
            self._hand_on(waiting.popleft())
        self.tracked.put(_END)

    def _detect(self, frame: _Frame) -> None:
        with self._timed("detect"):
            faces = self.find_faces(cv2.cvtColor(frame.yuv, cv2.COLOR_YUV2BGR_I420))
        with self._timed("track"):
            self.tracker.detected(frame.index, faces)

    def _hand_on(self, frame: _Frame) -> None:
        with self._timed("track"):
            frame.boxes = self.tracker.boxes(frame.index)
        self.tracked.put(frame)

    # The worker threads.

    def _guarded(self, work: Callable[[av.container.InputContainer], None], container: object) -> None:
        try:
            work(container)  # type: ignore[arg-type]
        except _Stopped:
            pass
        except BaseException as error:
            self.errors.append(error)
            self.stopping.set()

    def _decode(self, container: av.container.InputContainer) -> None:
        """Video frames, upright BGR, into `decoded`; the first audio stream's packets into `audio`."""
        video = container.streams.video[0]
        video.codec_context.thread_type = "AUTO"
        video.codec_context.thread_count = self.threads
        limit_frame_size(video, limits=self.limits)
        streams = [video, *container.streams.audio[:1]]
        rate = frame_rate(video) or Fraction(25)
        rotation = None
        undecodable = 0
        index = 0
        last_pts: int | None = None
        try:
            for packet in container.demux(streams):
                if packet.stream.type == "audio":
                    if packet.size:
                        self._check_audio(packet)
                        self.audio.put(packet)
                    continue
                try:
                    with self._timed("decode"):
                        frames = video.decode(packet)
                    undecodable = 0
                except av.error.InvalidDataError:
                    undecodable += 1  # a damaged packet: the decoder conceals what depends on it
                    if undecodable > MAX_UNDECODABLE_PACKETS:
                        raise CorruptVideo("The video cannot be decoded: its packets are damaged.") from None
                    continue
                for frame in frames:
                    if rotation is None:
                        rotation = clockwise_rotation(frame)
                    pts = frame.pts
                    if pts is None:  # no timestamps (some AVIs): the frame rate's
                        pts = round(index / rate / video.time_base)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1  # x264 needs strictly increasing timestamps
                    last_pts = pts
                    seconds = float((pts - (video.start_time or 0)) * video.time_base)
                    if seconds > self.limits.max_seconds + 1:
                        raise VideoTooLarge(f"The video lasts over {self.limits.max_seconds:g} s, the limit.")
                    if index >= self.limits.max_frames:  # the header's count binds no one; timestamps may crawl
                        raise VideoTooLarge(f"The video has over {self.limits.max_frames} frames, the limit.")
                    with self._timed("convert"):
                        yuv = self._upright(frame, rotation)
                    self.decoded.put(_Frame(index=index, pts=pts, duration=frame.duration or 0, yuv=yuv))
                    index += 1
                    self.frames_decoded = index
        except av.error.ExitError:
            raise CorruptVideo("Reading the video stalled.") from None
        except av.error.ArgumentError:
            raise frame_too_large(self.limits) from None
        except av.FFmpegError as error:
            raise CorruptVideo(f"The video cannot be decoded ({error.strerror}).") from None
        if index == 0:
            raise CorruptVideo("The video has no frames that can be decoded.")
        if video.frames and index < video.frames * (1 - MISSING_FRAMES_TOLERANCE) - 1:
            raise CorruptVideo(f"The video is truncated: {index} of its {video.frames} frames can be decoded.")
        self.audio.put(_END)
        self.decoded.put(_END)

    def _check_audio(self, packet: av.Packet) -> None:
        """The sound is bounded as the pictures are: its duration, and the packets waiting for the
        pictures they go with (the queue to the encoder is not bounded: it is drained after each
        frame written). Millions of 2-byte PCM packets between two frames were 280 bytes of memory
        and 60 us of CPU each (300 000 in a 2.4 MB file: 19 s, 85 MB)."""
        timed = packet.pts is not None and packet.time_base is not None
        if timed and float(packet.pts * packet.time_base) > self.limits.max_seconds + 1:
            raise VideoTooLarge(f"The video's sound lasts over {self.limits.max_seconds:g} s, the limit.")
        if self.audio.qsize() >= MAX_WAITING_AUDIO_PACKETS:
            raise CorruptVideo(
                f"The video's sound runs over {MAX_WAITING_AUDIO_PACKETS} packets ahead of its pictures: "
                "it is not interleaved."
            )

    def _upright(self, frame: av.VideoFrame, rotation: int) -> np.ndarray:
        """The frame as I420 planes at the output's size, turned upright."""
        turned = rotation in (90, 270)
        width, height = (self.height, self.width) if turned else (self.width, self.height)
        full_range = frame.color_range == FULL_RANGE or frame.format.name.startswith("yuvj")
        if frame.format.name == "yuv420p" and not full_range and (frame.width, frame.height) == (width, height):
            yuv = frame.to_ndarray()  # the decoder's planes as they are
        else:
            # Another pixel format (4:2:2, 10 bits), full range (MJPEG, some phones), an odd side, or a
            # size changed midway. FFmpeg's scaler converts the range only when told (a JPEG-range
            # frame left as it was came out 3 levels darker, 7 off on average).
            yuv = frame.reformat(
                format="yuv420p",
                width=width,
                height=height,
                src_color_range="JPEG" if full_range else "MPEG",
                dst_color_range="MPEG",
            ).to_ndarray()
        return rotate_i420(yuv, rotation) if rotation else yuv

    def _encode(self, container: av.container.InputContainer) -> None:
        """Frames from `tracked`, annotated, and the audio into the destination MP4."""
        source_video = container.streams.video[0]
        source_audio = container.streams.audio[0] if container.streams.audio else None
        with av.open(str(self.destination), "w", format="mp4", options={"movflags": "+faststart"}) as output:
            video = output.add_stream("libx264", rate=frame_rate(source_video) or Fraction(25))
            video.width, video.height = self.width, self.height
            video.pix_fmt = "yuv420p"
            video.time_base = source_video.time_base
            video.codec_context.time_base = source_video.time_base
            video.codec_context.thread_count = self.threads
            # The planes keep the input's colour matrix (BT.709 for HD, BT.601 for SD...): so do the tags.
            for tag in ("colorspace", "color_primaries", "color_trc"):
                setattr(video.codec_context, tag, getattr(source_video.codec_context, tag))
            video.options = {"preset": X264_PRESET, "crf": str(X264_CRF)}
            audio = _AudioCopy(output, source_audio) if source_audio is not None else None
            while (item := self.tracked.get()) is not _END:
                frame: _Frame = item  # type: ignore[assignment]
                with self._timed("draw"):
                    yuv = annotate_i420(frame.yuv, [box.as_face() for box in frame.boxes or []], style=self.style)
                    if frame.index == self.poster_frame or self.poster is None:
                        self.poster = encode_jpeg(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420), quality=85)
                encoded = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                encoded.pts, encoded.time_base = frame.pts, source_video.time_base
                if frame.duration:
                    encoded.duration = frame.duration
                with self._timed("encode"):
                    output.mux(video.encode(encoded))
                self.frames_written += 1
                if audio is not None:
                    audio.drain(self.audio, until_end=False, stopping=self.stopping)
            output.mux(video.encode(None))
            if audio is not None:
                audio.drain(self.audio, until_end=True, stopping=self.stopping)


def planes(yuv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of an I420 frame's Y, U and V planes (U and V half as wide and high), one after the
    other in the (height * 3 / 2, width) array."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat, luma, chroma = yuv.reshape(-1), height * width, (height // 2) * (width // 2)
    return (
        flat[:luma].reshape(height, width),
        flat[luma : luma + chroma].reshape(height // 2, width // 2),
        flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2),
    )


def i420(luma: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.concatenate([luma.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(-1, luma.shape[1])


def rotate_i420(yuv: np.ndarray, rotation: int) -> np.ndarray:
    """An I420 frame turned `rotation` degrees clockwise, plane by plane."""
    return i420(*(cv2.rotate(plane, ROTATIONS[rotation]) for plane in planes(yuv)))


def annotate_i420(yuv: np.ndarray, faces: list[Face], *, style: str) -> np.ndarray:
    """vision.imaging's annotation of an I420 frame: blurring and pixelating, linear, are the same on
    each plane (faces halved on U and V) as on BGR, without the two conversions (~10 ms at 1080p)."""
    if not faces:
        return yuv
    if style not in ANONYMISING_STYLES:  # boxes, labels and dots are drawn in colour, on BGR
        bgr = annotate(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420), faces, style=style)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    halved = [
        Face(
            box=Box(face.box.x // 2, face.box.y // 2, max(1, face.box.width // 2), max(1, face.box.height // 2)),
            confidence=face.confidence,
            landmarks=(),
        )
        for face in faces
    ]
    anonymised = yuv.copy()
    luma, u, v = planes(anonymised)
    anonymise_in_place(luma, faces, style=style)
    anonymise_in_place(u, halved, style=style)
    anonymise_in_place(v, halved, style=style)
    return anonymised


class _AudioCopy:
    """The input's first audio stream into the output: its packets as they are where COPIED_AUDIO,
    else decoded and encoded to AAC."""

    def __init__(self, output: av.container.OutputContainer, source: av.audio.stream.AudioStream) -> None:
        self.output, self.source = output, source
        self.copying = source.codec_context.codec.canonical_name in COPIED_AUDIO  # "mp3", not its decoder "mp3float"
        if self.copying:
            self.stream = output.add_stream_from_template(source)
        else:
            self.stream = output.add_stream("aac", rate=source.codec_context.sample_rate or 48_000)
            self.stream.bit_rate = AAC_BIT_RATE
            self.stream.format = "fltp"  # what FFmpeg's AAC encoder takes: PyAV converts to it
            # A named layout: AAC refuses PCM's unnamed "2 channels"; more than two are mixed down.
            self.stream.layout = "mono" if source.codec_context.channels == 1 else "stereo"
        self.ended = False

    def drain(self, packets: queue.Queue, *, until_end: bool, stopping: threading.Event) -> None:
        while not self.ended:
            if stopping.is_set():
                raise _Stopped
            try:
                packet = packets.get(timeout=0.1) if until_end else packets.get_nowait()
            except queue.Empty:
                if until_end:
                    continue
                return
            if packet is _END:
                self.ended = True
                if not self.copying:
                    self.output.mux(self.stream.encode(None))
                return
            self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        if self.copying:
            if packet.dts is None:
                return
            packet.stream = self.stream
            self.output.mux(packet)
            return
        try:
            frames = self.source.decode(packet)
        except av.error.InvalidDataError:
            return  # a damaged audio packet: a moment of silence, not a failed video
        for frame in frames:
            frame.pts = None  # the encoder's own count of samples, from the start
            self.output.mux(self.stream.encode(frame))
