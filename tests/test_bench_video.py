"""`make bench-video` end to end on two photos, small clips; and its scoring of what the real pipeline
drew, on clips where the answer is known: nothing anonymised, or the whole frame."""

import json

import pytest
from django.core.management import call_command

from detection.benchmark import load_dataset
from tests.conftest import require_dev_set
from videos.benchmark import Clip, render_clips, scored, video_limits
from vision.faces import Box, Face
from vision.video_pipeline import process_video


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Clip]:
    photos = load_dataset(require_dev_set())[:2]
    return render_clips(photos, tmp_path_factory.mktemp("clips"), size="640x360")


@pytest.mark.timeout(240)  # rendering, four pipelines, four speed runs in fresh processes: a minute when idle
def test_the_command_scores_clips_and_times_both_sizes(tmp_path, capsys):
    report_path = tmp_path / "report.json"

    call_command(
        "bench_video",
        *("--dataset", str(require_dev_set()), "--limit", "2", "--sizes", "640x360,480x270"),
        *("--min-confidence", "0.4,0.6", "--detect-every", "3"),
        *("--speed-clips", "1", "--speed-repeats", "1", "--json", str(report_path)),
    )

    printed = capsys.readouterr().out
    assert "coverage % easy / medium / hard" in printed and "peak RSS MB" in printed
    report = json.loads(report_path.read_text())
    assert [(row["min_confidence"], row["detect_every"]) for row in report["accuracy"]] == [(0.4, 3), (0.6, 3)]
    for row in report["accuracy"]:
        assert row["clips"] == 2 and row["frames"] == 150 and row["tracks"] > 0
        easy, hard = row["settings"]["easy"], row["settings"]["hard"]
        assert 0 < easy["face_frames"] < hard["face_frames"]  # settings nest: hard counts every face
        assert 0.3 < easy["coverage"] <= 1 and 0 < hard["coverage"] <= easy["coverage"]
        assert 0 <= row["over_blur"] < 0.2 and row["anonymised_area"] > 0
        assert 0 < row["photo"]["hard"]["recall"] < row["photo"]["easy"]["recall"] <= 1
    # A higher threshold anonymises less.
    assert report["accuracy"][1]["anonymised_area"] < report["accuracy"][0]["anonymised_area"]
    assert [(run["size"], run["cores"]) for run in report["speed"]] == [
        ("640x360", 1),
        ("640x360", 2),
        ("480x270", 1),
        ("480x270", 2),
    ]
    for run in report["speed"]:
        assert run["frames"] == 75 and run["fps"] > 0 and run["cpu_ms_per_frame"] > 0 and run["peak_rss_mb"] > 100


def test_nothing_found_is_nothing_covered(two_clips, tmp_path):
    clip = two_clips[0]
    processed = process_video(
        clip.path,
        tmp_path / "out.mp4",
        find_faces=lambda bgr: [],
        style="blur",
        detect_every=1,
        limits=video_limits(),
    )
    score = scored(clip, processed, style="blur").as_json()

    for setting in score["settings"].values():
        assert setting["face_frames"] > 0 and setting["coverage"] == 0
        assert setting["leaking_frames"] == setting["frames_with_faces"]
    assert score["over_blur"] == 0


def test_the_whole_frame_found_is_every_face_covered_and_nearly_all_over_blur(two_clips, tmp_path):
    clip = two_clips[1]

    def whole_frame(bgr):
        return [Face(Box(0, 0, bgr.shape[1], bgr.shape[0]), 0.99, ())]

    processed = process_video(
        clip.path,
        tmp_path / "out.mp4",
        find_faces=whole_frame,
        style="pixelate",
        detect_every=3,
        limits=video_limits(),
    )
    score = scored(clip, processed, style="pixelate").as_json()

    for setting in score["settings"].values():
        assert setting["coverage"] == 1 and setting["longest_leak_frames"] == 0
    assert score["anonymised_area"] > 0.99
    assert 0.9 < score["over_blur"] < 1
