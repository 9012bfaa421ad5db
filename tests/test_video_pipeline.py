"""The work of one video (vision/video_pipeline.py), on real clips made with PyAV from real photos:
what comes out plays in browsers, keeps the frames, timing, orientation and sound, and has every
face covered in every frame."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

from tests.cameras import FACES_PHOTO
from tests.conftest import require_dev_set
from vision.clips import pan_frames, still_frames, write_video
from vision.detector import detect_faces
from vision.errors import CorruptVideo, InvalidParameter, VideoCancelled
from vision.faces import Face
from vision.video_files import VideoLimits
from vision.video_pipeline import MAX_DETECT_EVERY, ProcessedVideo, VideoProgress, process_video

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160)
FPS = 25


def find_faces(bgr: np.ndarray, *, min_confidence: float = 0.6) -> list[Face]:
    return detect_faces(bgr, min_confidence=min_confidence, profile="fast", threads=1)


@pytest.fixture(scope="module")
def people() -> list[np.ndarray]:
    """One second, 640x360, of a camera panning slowly over two people."""
    photo = cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))
    return list(pan_frames(photo, width=640, height=360, frames=100))[:FPS]


def process(source: Path, destination: Path, **options: object) -> ProcessedVideo:
    arguments = {"find_faces": find_faces, "min_confidence": 0.6, "style": "blur", "detect_every": 2, "limits": LIMITS}
    arguments |= options
    return process_video(source, destination, **arguments)  # type: ignore[arg-type]


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def top_level_boxes(path: Path) -> list[str]:
    """An MP4's top-level boxes, in order."""
    data_, position, names = path.read_bytes(), 0, []
    while position + 8 <= len(data_):
        size, name = int.from_bytes(data_[position : position + 4], "big"), data_[position + 4 : position + 8]
        if size == 1:
            size = int.from_bytes(data_[position + 8 : position + 16], "big")
        names.append(name.decode("latin-1"))
        position += size if size else len(data_)
    return names


def test_the_output_is_a_browser_ready_mp4_with_the_same_frames_timing_and_sound(tmp_path, people):
    source = write_video(tmp_path / "people.mp4", people, fps=FPS, audio="aac", audio_seconds=1)
    progress: list[VideoProgress] = []

    result = process(source, tmp_path / "out.mp4", on_progress=progress.append)

    boxes = top_level_boxes(tmp_path / "out.mp4")
    assert boxes.index("moov") < boxes.index("mdat")  # fast start: plays before it has all arrived
    with av.open(str(tmp_path / "out.mp4")) as output:
        video, audio = output.streams.video[0], output.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (video.width, video.height) == (640, 360)
        assert video.average_rate == FPS
        assert audio.codec_context.name == "aac"
        frames = list(output.decode(video))
    assert len(frames) == result.frames == FPS
    last = frames[-1]
    duration = float((last.pts + last.duration) * last.time_base - frames[0].pts * frames[0].time_base)
    assert duration == pytest.approx(1.0, abs=1 / FPS)
    assert result.info.frames == FPS and result.info.has_audio
    assert result.poster_jpeg.startswith(b"\xff\xd8")
    faces = result.faces_json()
    assert (faces["frames"], faces["width"], faces["height"], faces["fps"]) == (FPS, 640, 360, FPS)
    assert len(faces["tracks"]) >= 2
    assert progress[-1].frames_done == progress[-1].frames_total == FPS
    assert [step.frames_done for step in progress] == sorted(step.frames_done for step in progress)


def test_every_face_is_blurred_in_every_frame_and_nothing_else_changes_much(tmp_path, people):
    source = write_video(tmp_path / "people.mp4", people, fps=FPS)

    result = process(source, tmp_path / "out.mp4", detect_every=3)

    originals, anonymised = decoded(source), decoded(tmp_path / "out.mp4")
    found = 0
    for index, (original, output) in enumerate(zip(originals, anonymised, strict=True)):
        difference = np.abs(original.astype(int) - output.astype(int)).mean(axis=2)
        covered = np.zeros(difference.shape, bool)
        for face in find_faces(original):  # the detector's view of each frame, even frames it skipped
            box = face.box
            inner = difference[
                box.y + box.height // 5 : box.y + box.height * 4 // 5,
                box.x + box.width // 5 : box.x + box.width * 4 // 5,
            ]
            assert inner.mean() > 8, f"frame {index}: a face at {box} is left sharp"
            found += 1
        for track in result.tracks:
            for frame, x, y, width, height, _ in track.boxes:
                if frame == index:
                    covered[
                        max(0, y - height // 2) : y + height * 3 // 2, max(0, x - width // 2) : x + width * 3 // 2
                    ] = True
        assert difference[~covered].mean() < 2, f"frame {index}: pixels away from faces changed"
    assert found >= 2 * FPS - 2


@pytest.mark.parametrize(
    ("container", "codec", "audio", "suffix", "expected"),
    [
        ("matroska", "libx264", "pcm_s16le", "mkv", "aac"),  # no PCM in MP4: made AAC
        ("avi", "mpeg4", "libmp3lame", "avi", "mp3"),  # copied as it is
    ],
)
def test_sound_an_mp4_cannot_hold_is_re_encoded_and_other_sound_copied(
    tmp_path, people, container, codec, audio, suffix, expected
):
    source = write_video(
        tmp_path / f"people.{suffix}", people, container=container, codec=codec, audio=audio, audio_seconds=1
    )

    process(source, tmp_path / "out.mp4", style="pixelate")

    with av.open(str(tmp_path / "out.mp4")) as output:
        stream = output.streams.audio[0]
        assert stream.codec.canonical_name == expected
        samples = sum(frame.samples for frame in output.decode(stream))
    assert samples / 48_000 == pytest.approx(1.0, abs=0.1)


def test_a_phone_video_comes_out_upright(tmp_path, people):
    # Held upright, a phone records its frames sideways and tells players to turn them 90 degrees.
    upright = [frame[:, 200:440] for frame in people]  # 240x360 portrait
    stored = [cv2.rotate(frame, cv2.ROTATE_90_COUNTERCLOCKWISE) for frame in upright]
    source = write_video(tmp_path / "phone.mp4", stored, rotation=90)

    result = process(source, tmp_path / "out.mp4", style="box")

    assert (result.info.width, result.info.height, result.info.rotation) == (240, 360, 90)
    with av.open(str(tmp_path / "out.mp4")) as output:
        first = next(output.decode(video=0))
        assert (first.width, first.height, first.rotation) == (240, 360, 0)
    outputs = decoded(tmp_path / "out.mp4")
    # Upright: like the upright frames, unlike them turned (away from the drawn boxes, at the bottom).
    assert np.abs(outputs[0][300:].astype(int) - upright[0][300:]).mean() < 6
    assert np.abs(outputs[0].astype(int) - cv2.resize(stored[0], (240, 360))).mean() > 20


def test_a_variable_frame_rate_keeps_its_timestamps(tmp_path, people):
    times = [0, 40, 80, 120, 300, 340, 380, 700, 740, 780, 820, 860]
    source = write_video(tmp_path / "vfr.mkv", people[: len(times)], container="matroska", timestamps_ms=times)

    process(source, tmp_path / "out.mp4")

    with av.open(str(tmp_path / "out.mp4")) as output:
        seconds = [float(frame.pts * frame.time_base) for frame in output.decode(video=0)]
    assert seconds == pytest.approx([time / 1000 for time in times], abs=0.002)


def test_a_video_without_faces_comes_out_as_it_went_in(tmp_path):
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    source = write_video(tmp_path / "coffee.mp4", still_frames(coffee, width=320, height=240, frames=10))

    result = process(source, tmp_path / "out.mp4")

    assert result.tracks == []
    assert result.frames == 10
    # A generation of H.264 (crf 23) and no more: no colour shift, no blur.
    assert np.abs(decoded(source)[5].astype(int) - decoded(tmp_path / "out.mp4")[5]).mean() < 4


def test_cancelling_stops_the_work_and_removes_the_output(tmp_path, people):
    source = write_video(tmp_path / "people.mp4", people)
    destination = tmp_path / "out.mp4"

    with pytest.raises(VideoCancelled):
        process(source, destination, should_stop=lambda: True)
    assert not destination.exists()


def test_a_video_cut_short_fails_as_corrupt_and_leaves_no_output(tmp_path, people):
    # The index first (fast start) says 25 frames; the file ends after some of them.
    whole = write_video(tmp_path / "whole.mp4", people, faststart=True).read_bytes()
    source = tmp_path / "cut.mp4"
    source.write_bytes(whole[: len(whole) * 2 // 3])
    destination = tmp_path / "out.mp4"

    with pytest.raises(CorruptVideo, match="truncated"):
        process(source, destination)
    assert not destination.exists()


def test_detecting_too_rarely_is_refused_before_any_work(tmp_path, people):
    # The tracker keeps (MISSED_ROUNDS + 1) rounds of frames in memory: the spacing is bounded.
    source = write_video(tmp_path / "people.mp4", people[:5])

    for detect_every in (0, MAX_DETECT_EVERY + 1):
        with pytest.raises(InvalidParameter, match=f"from 1 to {MAX_DETECT_EVERY}"):
            process(source, tmp_path / "out.mp4", detect_every=detect_every)
    assert not (tmp_path / "out.mp4").exists()


def test_a_full_range_camera_video_keeps_its_brightness(tmp_path):
    # MJPEG (webcams, older cameras) uses all 256 levels, H.264 in browsers 16 to 235: converted, not copied.
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    frames = still_frames(coffee, width=320, height=240, frames=6)
    source = write_video(tmp_path / "webcam.avi", frames, container="avi", codec="mjpeg")

    process(source, tmp_path / "out.mp4", detect_every=1)

    original, output = decoded(source)[3].astype(int), decoded(tmp_path / "out.mp4")[3].astype(int)
    difference = output - original
    assert abs(difference.mean()) < 1  # no shift of brightness
    assert np.abs(difference).mean() < 5


def test_an_iphone_style_hevc_video_comes_out_upright_h264_with_its_sound(tmp_path, people):
    # HEVC, 10 bits, in a MOV, recorded sideways with a rotation to apply, AAC sound.
    stored = [cv2.rotate(frame[:, 200:440], cv2.ROTATE_90_COUNTERCLOCKWISE) for frame in people[:8]]
    source = write_video(
        tmp_path / "IMG_0001.MOV",
        stored,
        container="mov",
        codec="libx265",
        pix_fmt="yuv420p10le",
        rotation=90,
        audio="aac",
        audio_seconds=0.3,
    )

    result = process(source, tmp_path / "out.mp4")

    assert (result.info.container, result.info.codec, result.info.rotation) == ("mov", "hevc", 90)
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert [stream.codec.canonical_name for stream in output.streams] == ["h264", "aac"]
        first = next(output.decode(video=0))
    assert (first.width, first.height, first.format.name) == (240, 360, "yuv420p")
    assert result.frames == 8
