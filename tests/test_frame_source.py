"""vision.video: sampling frames from files, RTSP and HTTP MJPEG cameras, and saying why one fails."""

import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.cameras import (
    CLIP_FPS,
    FACES_PHOTO,
    gstreamer_camera,
    mjpeg_camera,
    silent_server,
)
from tests.conftest import require_dev_set
from tests.live_server import free_port
from vision.clips import pan_frames
from vision.errors import VideoStalled, VideoUnavailable
from vision.video import open_video, sampled_frames, write_h264


def sample(url: str, *, fps: float, count: int, read_timeout: float = 5, **options: object) -> list:
    with open_video(url, open_timeout=5, read_timeout=read_timeout) as video:
        frames = []
        for frame in sampled_frames(video, fps=fps, **options):
            frames.append(frame)
            if len(frames) == count:
                break
        return frames


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every frame different, a keyframe every 12 frames (0.48 s)."""
    photo = cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    write_h264(path, pan_frames(photo, width=320, height=240, frames=3 * CLIP_FPS), fps=CLIP_FPS, keyframe_interval=12)
    return path


def test_it_samples_a_file_at_the_rate_asked_by_timestamps(pan_clip):
    frames = sample(str(pan_clip), fps=2, count=100, realtime=False)

    assert len(frames) in (6, 7)  # 3 s at 2 fps (the last one a keyframe taken early)
    assert all(frame.bgr.shape == (240, 320, 3) for frame in frames)
    gaps = np.diff([frame.seconds for frame in frames])
    assert all(0.375 <= gap <= 0.625 for gap in gaps), gaps  # a keyframe may stand in a quarter interval off


@pytest.mark.parametrize("fps", [2, 5, 25])
def test_skipping_what_no_sample_needs_changes_no_sample(pan_clip, fps):
    skipping = sample(str(pan_clip), fps=fps, count=100, realtime=False)
    decoding_all = sample(str(pan_clip), fps=fps, count=100, realtime=False, decode_all=True)

    assert [frame.seconds for frame in skipping] == [frame.seconds for frame in decoding_all]
    assert all(np.array_equal(a.bgr, b.bgr) for a, b in zip(skipping, decoding_all, strict=True))


def test_damaged_packets_are_passed_over(pan_clip, tmp_path):
    # Six predicted frames whose NAL unit lengths are garbage: the decoder refuses each one.
    with av.open(str(pan_clip)) as video:
        positions = [packet.pos for packet in video.demux(video.streams.video[0]) if not packet.is_keyframe]
    damaged = bytearray(pan_clip.read_bytes())
    for position in positions[20:26]:
        damaged[position : position + 4] = b"\xff\xff\xff\xff"
    (tmp_path / "damaged.mp4").write_bytes(damaged)

    frames = sample(str(tmp_path / "damaged.mp4"), fps=5, count=100, realtime=False)

    assert len(frames) >= 14  # 3 s at 5 fps, less what depended on the damaged frames
    assert frames[-1].seconds > 2.5


def test_a_file_watched_as_a_camera_is_read_no_faster_than_it_plays(pan_clip):
    started = time.monotonic()
    frames = sample(str(pan_clip), fps=2, count=3)

    assert frames[-1].seconds == pytest.approx(1.0, abs=0.1)
    assert time.monotonic() - started >= 0.9


def test_it_reads_an_rtsp_camera(faces_clip):
    with gstreamer_camera(faces_clip) as url:
        frames = sample(url, fps=4, count=4)

    assert [frame.bgr.shape for frame in frames] == [(480, 640, 3)] * 4
    assert frames[-1].seconds == pytest.approx(0.75, abs=0.1)


def test_it_reads_an_http_mjpeg_camera(astronaut_jpeg):
    with mjpeg_camera(astronaut_jpeg, fps=20) as url:
        frames = sample(url, fps=5, count=3)

    assert [frame.bgr.shape for frame in frames] == [(512, 512, 3)] * 3
    # The astronaut as sent: the JPEG's pixels (FFmpeg's colour conversion rounds a little differently).
    sent = cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(frames[0].bgr.astype(int) - sent).mean() < 2


def test_a_refused_connection_says_so():
    with pytest.raises(VideoUnavailable, match="Connection refused"):
        open_video(f"rtsp://127.0.0.1:{free_port()}/cam")


@pytest.mark.parametrize("url", ["ftp://192.0.2.7/camera.mp4", "tcp://192.0.2.7:554", "udp://192.0.2.7:5000"])
def test_a_url_of_another_protocol_says_what_is_read(url):
    with pytest.raises(VideoUnavailable, match=r"rtsp://, rtsps://, http://, https://.*or a file path"):
        open_video(url)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(VideoUnavailable, match="No such file"):
        open_video(str(tmp_path / "camera.mp4"))


def test_a_file_that_is_not_video_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(VideoUnavailable, match="Invalid data"):
        open_video(str(tmp_path / "notes.txt"))


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_camera_that_never_answers_times_out(scheme):
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(VideoStalled, match="No answer within 1 s"):
            open_video(f"{scheme}://127.0.0.1:{port}/cam", open_timeout=1)

    assert time.monotonic() - started < 3


def test_a_stream_that_stalls_times_out(astronaut_jpeg):
    with mjpeg_camera(astronaut_jpeg, fps=20, stall_after=5) as url:
        started = time.monotonic()
        with pytest.raises(VideoStalled, match="stalled"):
            sample(url, fps=20, count=100, read_timeout=1)

    assert time.monotonic() - started < 4
