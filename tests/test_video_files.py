"""Judging an uploaded video from its bytes (vision/video_files.py): real clips made with PyAV from a
dev photo, and files that only claim to be videos."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.cameras import FACES_PHOTO
from tests.conftest import require_dev_set
from vision.clips import pan_frames, write_video
from vision.errors import CorruptVideo, UnsupportedVideoFormat, VideoEmpty, VideoTooLarge
from vision.video_files import VIDEO_FORMATS_TEXT, VideoLimits, probe_video

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """One second at 25 fps, 320x240, panning over a photo of two people."""
    photo = cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))
    return list(pan_frames(photo, width=320, height=240, frames=25))


@pytest.mark.parametrize(
    ("container", "codec", "audio", "suffix", "name", "codec_name"),
    [
        ("mp4", "libx264", "aac", "mp4", "mp4", "h264"),
        ("mov", "libx264", "aac", "mov", "mov", "h264"),
        ("matroska", "libx264", "pcm_s16le", "mkv", "matroska", "h264"),
        ("webm", "libvpx", "libopus", "webm", "webm", "vp8"),
        ("avi", "mpeg4", "libmp3lame", "avi", "avi", "mpeg4"),
    ],
)
def test_common_formats_are_read(tmp_path, frames, container, codec, audio, suffix, name, codec_name):
    # The name says nothing: the bytes are judged.
    path = write_video(tmp_path / "upload.bin", frames, container=container, codec=codec, audio=audio, audio_seconds=1)

    info = probe_video(path, limits=LIMITS)

    assert (info.container, info.codec) == (name, codec_name)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.fps == 25
    assert abs(info.frames - 25) <= 1
    assert info.seconds == pytest.approx(1.0, abs=0.05)
    assert info.has_audio
    assert info.as_json()["container"] == name


def test_a_silent_video_has_no_audio(tmp_path, frames):
    info = probe_video(write_video(tmp_path / "silent.mp4", frames), limits=LIMITS)

    assert not info.has_audio


@pytest.mark.parametrize(("rotation", "expected"), [(90, 90), (270, 270), (180, 180)])
def test_a_phones_rotation_is_read_and_the_displayed_size_given(tmp_path, frames, rotation, expected):
    path = write_video(tmp_path / "phone.mp4", frames, rotation=rotation)

    info = probe_video(path, limits=LIMITS)

    assert info.rotation == expected
    assert (info.width, info.height) == ((240, 320) if expected in (90, 270) else (320, 240))


def unsupported_files(tmp_path: Path) -> dict[str, Path]:
    jpeg = tmp_path / "photo.mp4"
    jpeg.write_bytes((require_dev_set() / "images" / FACES_PHOTO).read_bytes())
    text = tmp_path / "notes.mp4"
    text.write_text("ftyp is not enough to be a video\n" * 20)
    wav = tmp_path / "sound.avi"
    with av.open(str(wav), "w", format="wav") as output:
        stream = output.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        output.mux(stream.encode(frame))
    sound_only = tmp_path / "sound.m4a"  # an MP4 of audio alone
    with av.open(str(sound_only), "w", format="mp4") as output:
        stream = output.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return {"jpeg": jpeg, "text": text, "wav": wav, "audio-only mp4": sound_only}


def test_other_files_are_refused_with_the_formats_that_work(tmp_path):
    for kind, path in unsupported_files(tmp_path).items():
        with pytest.raises(UnsupportedVideoFormat) as raised:
            probe_video(path, limits=LIMITS)
        assert VIDEO_FORMATS_TEXT in raised.value.message, kind


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")

    with pytest.raises(VideoEmpty):
        probe_video(path, limits=LIMITS)


def test_a_truncated_video_is_corrupt(tmp_path, frames):
    # Index at the end (as cameras write MP4): cut, the file has no index.
    whole = write_video(tmp_path / "whole.mp4", frames).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(CorruptVideo):
        probe_video(cut, limits=LIMITS)


def test_a_video_of_garbage_behind_a_real_header_is_corrupt(tmp_path, frames):
    whole = write_video(tmp_path / "whole.mkv", frames, container="matroska").read_bytes()
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(whole[:64] + np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8).tobytes())

    with pytest.raises(CorruptVideo):
        probe_video(broken, limits=LIMITS)


def test_the_limits_are_checked_and_named(tmp_path, frames):
    path = write_video(tmp_path / "clip.mp4", frames)

    with pytest.raises(VideoTooLarge, match="the limit is 76799 pixels"):
        probe_video(path, limits=VideoLimits(max_seconds=600, max_pixels=320 * 240 - 1))
    with pytest.raises(VideoTooLarge, match=r"the limit is 0\.5 s"):
        probe_video(path, limits=VideoLimits(max_seconds=0.5, max_pixels=3840 * 2160))
    assert probe_video(path, limits=VideoLimits(max_seconds=1.5, max_pixels=320 * 240)).frames == 25
