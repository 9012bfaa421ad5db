"""Attacks on POST /video from its bytes: the cheapest files that would cost the server the most,
refused before the work or at the first frame past a limit. Each is made with PyAV from a dev photo.

What they cost before the limits (a server of this machine, `fast` profile, detect_every 3):
- frames by the thousand a second: a 16x16 frame is 13 bytes of MP4 and 2 ms of CPU, so 600 s at
  1000 fps (8 MB) was 20 minutes of CPU, and 500 MB of them (40 million frames) most of a day;
- a header that says 10 frames at 10 fps over 1000 frames 1 ms apart: all of them processed;
- MJPEG (each JPEG carries its size) 32x32 in its header and first frame, then 16000x16000: 1.6 GB
  of RSS for a 4 MB file, a frame; at 65535x65535 (a 30 MB file) 19 GB, the server killed;
- a 1x1 video: an unexpected failure (a traceback) deep in the pipeline.
"""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.video_clips import faces_photo
from videos.models import Video
from vision.errors import CorruptVideo, UnsupportedVideoFormat, VideoTooLarge
from vision.video_files import MAX_FPS, VideoLimits, probe_video
from vision.video_pipeline import process_video

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160)


def no_faces(bgr: np.ndarray) -> list:
    return []


def photo(width: int, height: int) -> np.ndarray:
    return cv2.resize(faces_photo(), (width, height), interpolation=cv2.INTER_AREA)


def repeated_frames(
    path: Path, *, width: int, height: int, frames: int, fps: int, tick: Fraction | None = None, container: str = "mp4"
) -> Path:
    """A still of the photo as `frames` H.264 frames, each `tick` seconds after the last (1/fps by
    default) while the header says `fps`: one keyframe, then the same skipped frame (a dozen bytes)
    muxed again and again, as cheap to make as to send whatever the count."""
    time_base = Fraction(1, 1000) if tick else Fraction(1, fps)
    step = round((tick or Fraction(1, fps)) / time_base)
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = {"preset": "ultrafast", "bf": "0"}
        packets = []
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(photo(width, height), format="bgr24")
            frame.pts = index
            packets += stream.encode(frame)
        packets += stream.encode(None)
        keyframe, skipped = packets[0], packets[-1]
        for index in range(frames):
            packet = keyframe if index == 0 else skipped
            packet.pts = packet.dts = index * step
            packet.duration, packet.time_base, packet.stream = step, time_base, stream
            output.mux(packet)
    return path


def mjpeg(path: Path, sizes: list[tuple[int, int]], *, container: str = "matroska", header: tuple[int, int]) -> Path:
    """MJPEG frames of the photo at `sizes`, in a file whose header says `header`: each JPEG carries
    its own size, whatever the header and the first frame say."""
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream("mjpeg", rate=10)
        stream.width, stream.height = header
        stream.pix_fmt = "yuvj420p"
        for index, (width, height) in enumerate(sizes):
            packet = av.Packet(cv2.imencode(".jpg", photo(width, height), [cv2.IMWRITE_JPEG_QUALITY, 30])[1].tobytes())
            packet.pts = packet.dts = index
            packet.duration, packet.time_base, packet.stream = 1, Fraction(1, 10), stream
            packet.is_keyframe = True
            output.mux(packet)
    return path


def process(path: Path, tmp_path: Path, limits: VideoLimits = LIMITS):
    return process_video(path, tmp_path / "out.mp4", find_faces=no_faces, style="box", detect_every=3, limits=limits)


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_a_thousand_frames_a_second_is_refused_before_any_work(tmp_path, container):
    # 2 s of it here; 600 s (the duration limit) is 8 MB and was 20 minutes of CPU.
    path = repeated_frames(tmp_path / "tiny", width=16, height=16, frames=2000, fps=1000, container=container)
    assert path.stat().st_size < 40_000  # cheap indeed

    with pytest.raises(VideoTooLarge) as refused:
        probe_video(path, limits=LIMITS)

    assert f"the limit is {MAX_FPS:g}" in refused.value.message


def test_frames_past_the_limit_are_refused_while_decoding_whatever_the_header_says(tmp_path):
    # The header: 10 fps; the frames: 1 ms apart. The probe believes 1 s of 10 frames.
    path = repeated_frames(
        tmp_path / "crawl.mkv", width=64, height=48, frames=1000, fps=10, tick=Fraction(1, 1000), container="matroska"
    )
    limits = VideoLimits(max_seconds=10, max_pixels=3840 * 2160, max_fps=30)
    assert probe_video(path, limits=limits).frames == 10

    with pytest.raises(VideoTooLarge) as refused:
        process(path, tmp_path, limits)

    assert "300 frames" in refused.value.message
    assert not (tmp_path / "out.mp4").exists()


def test_a_video_at_the_frame_rate_limit_still_works(tmp_path):
    path = repeated_frames(tmp_path / "fast.mp4", width=64, height=48, frames=24, fps=240)

    assert process(path, tmp_path).frames == 24


def test_a_frame_larger_than_the_first_is_refused_before_it_is_decoded(tmp_path):
    # Small in the header and the first frame, over the pixel limit after: the decoder refuses the
    # frame before allocating it (was: every such frame decoded, 1.6 GB for a 16000x16000 one).
    path = mjpeg(tmp_path / "grows.mkv", [(32, 32), (32, 32), (640, 480), (32, 32)], header=(32, 32))
    limits = VideoLimits(max_seconds=600, max_pixels=320 * 240)
    assert probe_video(path, limits=limits).width == 32

    with pytest.raises(VideoTooLarge) as refused:
        process(path, tmp_path, limits)

    assert str(320 * 240) in refused.value.message


@pytest.mark.parametrize("container", ["matroska", "avi"])
def test_a_first_frame_larger_than_the_header_says_is_refused_by_the_probe(tmp_path, container):
    path = mjpeg(tmp_path / "lies", [(640, 480), (32, 32)], container=container, header=(32, 32))

    with pytest.raises(VideoTooLarge):
        probe_video(path, limits=VideoLimits(max_seconds=600, max_pixels=320 * 240))


def test_a_video_that_changes_size_within_the_limit_is_processed_at_its_first_size(tmp_path):
    path = mjpeg(tmp_path / "sizes.mkv", [(64, 48), (320, 240), (16, 16), (64, 48)], header=(64, 48))

    result = process(path, tmp_path)

    assert result.frames == 4
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert {(frame.width, frame.height) for frame in output.decode(video=0)} == {(64, 48)}


@pytest.mark.parametrize(("width", "height"), [(1, 1), (1, 64), (64, 1)])
def test_a_video_one_pixel_wide_or_high_is_refused_by_the_probe(tmp_path, width, height):
    # H.264's 4:2:0 crops odd sides to even: nothing would be left (was: a traceback deep in the pipeline).
    path = mjpeg(tmp_path / "dot.mkv", [(width, height)] * 3, header=(width, height))

    with pytest.raises(CorruptVideo):
        probe_video(path, limits=LIMITS)


def test_a_codec_that_cannot_be_opened_is_corrupt_not_too_large(tmp_path):
    # EINVAL opening the decoder (a 48-bit RGB AVI FFmpeg cannot read) is not a frame over the limit.
    path = tmp_path / "rgb48.avi"
    with av.open(str(path), "w", format="avi") as output:
        stream = output.add_stream("rawvideo", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb48le"
        for _ in range(3):
            output.mux(stream.encode(av.VideoFrame.from_ndarray(photo(64, 48), format="bgr24")))
        output.mux(stream.encode(None))

    with pytest.raises(CorruptVideo):
        probe_video(path, limits=LIMITS)


@pytest.mark.parametrize(
    ("codec", "pixel_format", "container"),
    [
        ("libx264", "yuv444p10le", "matroska"),
        ("ffv1", "rgb48le", "matroska"),
        ("ffv1", "gray16le", "matroska"),
        ("prores_ks", "yuv422p10le", "mov"),
    ],
)
def test_deep_and_odd_pixel_formats_are_processed(tmp_path, codec, pixel_format, container):
    path = tmp_path / f"odd.{container}"
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pixel_format
        for _ in range(5):
            output.mux(stream.encode(av.VideoFrame.from_ndarray(photo(64, 48), format="bgr24")))
        output.mux(stream.encode(None))

    assert process(path, tmp_path).frames == 5


def test_many_audio_tracks_and_a_subtitle_stream_cost_nothing_more(tmp_path):
    path = tmp_path / "tracks.mkv"
    with av.open(str(path), "w", format="matroska") as output:
        stream = output.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.options = 64, 48, {"preset": "ultrafast"}
        for _ in range(40):
            output.add_stream("libopus", rate=48000).layout = "mono"
        output.add_stream("ass")
        for _ in range(5):
            output.mux(stream.encode(av.VideoFrame.from_ndarray(photo(64, 48), format="bgr24")))
        output.mux(stream.encode(None))

    assert process(path, tmp_path).frames == 5


@pytest.mark.parametrize(
    "content",
    [
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        b"ffconcat version 1.0\nfile /etc/passwd\n",
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"PK\x03\x04" + b"\x00" * 100,
    ],
    ids=["hls", "ffconcat", "gif", "zip"],
)
def test_playlists_and_other_files_posing_as_video_are_never_opened(tmp_path, content):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)

    with pytest.raises(UnsupportedVideoFormat):
        probe_video(path, limits=LIMITS)


@pytest.mark.django_db
def test_post_video_refuses_a_thousand_frames_a_second_with_413_and_keeps_nothing(tmp_path):
    path = repeated_frames(tmp_path / "tiny.mp4", width=16, height=16, frames=2000, fps=1000)

    response = APIClient().post("/video", {"video": SimpleUploadedFile("a.mp4", path.read_bytes())}, format="multipart")

    assert response.status_code == 413, response.content
    assert response.json()["error"]["code"] == "video_too_large"
    assert not Video.objects.exists()
