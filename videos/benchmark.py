"""The video benchmark behind `make bench-video`: clips with known faces in every frame, made from
the dev sample's photos (vision.video_evaluation), run through the upload's own work
(vision.video_pipeline.process_video with detection.pipeline.find_faces, the video settings), and
scored per WIDER setting: face-frame coverage, leaks, over-blur; beside the photo detector's recall
at the same threshold; then processing speed at 720p and 1080p on one core and on the whole machine,
and peak RSS.

A sweep of profiles, thresholds and detect-every values shares each profile's detections
(vision.video_evaluation.SharedDetections: exactly find_faces's faces, the network run once per frame);
the speed runs use find_faces itself.
"""

import contextlib
import hashlib
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from django.conf import settings

from detection.benchmark import Photo, read_photo
from detection.loadbench import cpu_model, own_cpu_seconds
from detection.pipeline import find_faces
from vision.evaluation import SETTINGS, Scored, score_setting
from vision.imaging import ANONYMISE_MARGIN, ANONYMISING_STYLES
from vision.video import write_h264
from vision.video_evaluation import (
    CLIP_FPS,
    KEYFRAME_SECONDS,
    SharedDetections,
    TruthClip,
    VideoTally,
    drawn_regions,
    render_clip,
    score_clip,
)
from vision.video_files import VideoLimits
from vision.video_pipeline import ProcessedVideo, process_video

# Issue 13's targets for the default settings.
TARGET_COVERAGE = 0.995  # easy + medium face-frames (WIDER's medium setting)
TARGET_LONGEST_LEAK = 2  # frames in a row an easy or medium face may stay uncovered
TARGET_FPS = {"1920x1080": 25.0, "1280x720": 50.0}  # processing, whole machine
# The style whose regions are scored: the one that hides faces (its regions are the boxes grown by
# ANONYMISE_MARGIN, as vision.imaging draws them).
STYLE = "blur"

Progress = Callable[[Iterable], Iterable]


@dataclass(frozen=True)
class Setup:
    profile: str
    min_confidence: float
    detect_every: int

    @property
    def name(self) -> str:
        return f"{self.profile} {self.min_confidence:g} every {self.detect_every}"


@dataclass(frozen=True)
class Clip:
    photo: Photo
    path: Path
    truth: TruthClip


def default_setup() -> Setup:
    """What an upload gets unless it asks otherwise (settings, or the environment)."""
    return Setup(settings.VIDEO_PROFILE, settings.VIDEO_MIN_CONFIDENCE, settings.VIDEO_DETECT_EVERY)


def video_limits() -> VideoLimits:
    return VideoLimits(max_seconds=settings.MAX_VIDEO_SECONDS, max_pixels=settings.MAX_VIDEO_PIXELS)


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def spread(photos: list[Photo], count: int | None) -> list[Photo]:
    """`count` of the photos, evenly spaced in name order: WIDER's names start with their event, so a
    few photos still come from events all over the set, not only the first ones."""
    if count is None or count >= len(photos):
        return photos
    return [photos[index * len(photos) // count] for index in range(count)]


def clip_seed(photo: Photo) -> int:
    """A photo's clip is the same from run to run, whatever photos are run beside it."""
    return int.from_bytes(hashlib.sha256(photo.name.encode()).digest()[:4], "big")


def render_clips(photos: list[Photo], folder: Path, *, size: str, progress: Progress = iter) -> list[Clip]:
    """Each photo's clip, encoded as a phone would (H.264, a keyframe every KEYFRAME_SECONDS), in `folder`."""
    width, height = parse_size(size)
    clips = []
    for photo in progress(photos):
        frames, truth = render_clip(read_photo(photo), photo.truth, width=width, height=height, seed=clip_seed(photo))
        path = folder / f"{Path(photo.name).stem}-{size}.mp4"
        write_h264(path, frames, fps=CLIP_FPS, keyframe_interval=CLIP_FPS * KEYFRAME_SECONDS)
        clips.append(Clip(photo, path, truth))
    return clips


def scored(clip: Clip, processed: ProcessedVideo, *, style: str) -> VideoTally:
    """The clip's truth against the regions the pipeline drew (its tracks' boxes, grown as the style grows them)."""
    if processed.frames != clip.truth.frames:
        raise AssertionError(f"{clip.path.name}: {processed.frames} frames out of {clip.truth.frames}")
    regions = drawn_regions(
        [track.as_json() for track in processed.tracks],
        frames=clip.truth.frames,
        width=clip.truth.width,
        height=clip.truth.height,
        margin=ANONYMISE_MARGIN if style in ANONYMISING_STYLES else 0.0,
    )
    return score_clip(clip.truth, regions)


def measure_accuracy(
    clips: list[Clip],
    setups: list[Setup],
    *,
    folder: Path,
    style: str = STYLE,
    progress: Progress = iter,
    after_each: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Each setup's coverage, leaks and over-blur over all the clips, and the photo detector's recall on
    the clips' photos at the same profile and threshold. `after_each` gets the results so far after
    each setup (a long sweep's partial report)."""
    shared = {
        profile: SharedDetections(
            profile=profile,
            floor=min(setup.min_confidence for setup in setups if setup.profile == profile),
            threads=settings.DETECTOR_THREADS,
            engine=settings.DETECTOR_ENGINE,
        )
        for profile in dict.fromkeys(setup.profile for setup in setups)
    }
    results = []
    output = folder / "processed.mp4"
    for setup in setups:
        tally, tracks = VideoTally(), 0
        detect = partial(shared[setup.profile].faces, min_confidence=setup.min_confidence)
        for clip in progress(clips):
            processed = process_video(
                clip.path,
                output,
                find_faces=detect,
                style=style,
                detect_every=setup.detect_every,
                limits=video_limits(),
            )
            tally.add(scored(clip, processed, style=style))
            tracks += len(processed.tracks)
        photos = photo_scores([clip.photo for clip in clips], shared[setup.profile], setup.min_confidence)
        results.append({**asdict(setup), "clips": len(clips), "tracks": tracks, **tally.as_json(), "photo": photos})
        if after_each is not None:
            after_each(results)
    output.unlink(missing_ok=True)
    return results


def photo_scores(photos: list[Photo], detections: SharedDetections, threshold: float) -> dict:
    """The photo detector on the photos themselves: recall per setting at `threshold` (IoU >= 0.5), and
    the faces it would hide (at least 80% covered by its boxes grown by ANONYMISE_MARGIN)."""
    images = []
    for photo in photos:
        faces = detections.faces(read_photo(photo), min_confidence=threshold)
        boxes = [Scored((face.box.x, face.box.y, face.box.width, face.box.height), face.confidence) for face in faces]
        images.append((boxes, photo.truth))
    scores = {setting: score_setting(images, setting, threshold, margin=ANONYMISE_MARGIN) for setting in SETTINGS}
    return {
        setting: {"recall": round(score.recall, 4), "hidden": round(score.hidden, 4), "faces": score.faces}
        for setting, score in scores.items()
    }


# --- Speed and memory ---------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Linux: VmHWM starts again from the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def rss_mb(field: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} in /proc/self/status")


def pin_threads(cpus: set[int]) -> None:
    """Every thread of this process (and those they start) on `cpus` only."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cpus)


def _django_ready() -> None:
    """A spawned process's Django: the same settings module as this one's."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facesite.settings")
    django.setup()


def in_fresh_process(work: Callable, /, *args: object, **kwargs: object) -> object:
    """`work(*args, **kwargs)` in a new process, as a worker that processes videos is: its memory is the
    video's work alone, not what this one has gathered."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_django_ready) as pool:
        return pool.submit(work, *args, **kwargs).result()


def measure_speed(
    clips: list[Clip], setup: Setup, *, size: str, one_core: bool, repeats: int = 1, style: str = STYLE
) -> dict:
    """Frames per second processing the clips one after the other as the upload's task does (find_faces
    on the server's detector settings), on one core (every thread pinned to one CPU, codecs on one
    thread) or on the whole machine (codec threads FFmpeg's choice), `repeats` times: the median run;
    CPU time per frame; peak RSS over the runs. Run it in a fresh process (in_fresh_process)."""
    all_cpus = os.sched_getaffinity(0)
    output = clips[0].path.with_name(f"speed-{os.getpid()}.mp4")
    detect = partial(find_faces, min_confidence=setup.min_confidence, profile=setup.profile)
    width, height = parse_size(size)
    detect(np.zeros((height, width, 3), np.uint8))  # the detector's session, made before timing
    if one_core:
        pin_threads({min(all_cpus)})
    runs, rss_before = [], rss_mb("VmRSS")
    reset_peak_rss()
    try:
        for _ in range(repeats):
            frames, cpu, started = 0, own_cpu_seconds(), time.perf_counter()
            for clip in clips:
                processed = process_video(
                    clip.path,
                    output,
                    find_faces=detect,
                    style=style,
                    detect_every=setup.detect_every,
                    limits=video_limits(),
                    threads=1 if one_core else 0,
                )
                frames += processed.frames
            wall, used = time.perf_counter() - started, own_cpu_seconds() - cpu
            runs.append((frames / wall, 1000 * used / frames))
    finally:
        pin_threads(all_cpus)
        output.unlink(missing_ok=True)
    fps = [round(rate, 1) for rate, _ in runs]
    return {
        **asdict(setup),
        "size": size,
        "cores": 1 if one_core else len(all_cpus),
        "frames": frames,
        "fps": round(statistics.median(fps), 1),
        "fps_runs": fps,
        "cpu_ms_per_frame": round(statistics.median(cost for _, cost in runs), 1),
        "rss_before_mb": rss_before,
        "peak_rss_mb": rss_mb(),
        "load_average": round(os.getloadavg()[0], 2),
    }


class RssWatch:
    """The process's RSS sampled every `interval` seconds in a thread, while in the `with`."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.samples, self.stop = interval, [], threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(self.interval):
            self.samples.append(rss_mb("VmRSS"))

    def __enter__(self) -> "RssWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def measure_long_video(photo: Photo, folder: Path, *, seconds: float, setup: Setup) -> dict:
    """A long 1080p clip (a pan over one photo, no truth needed) processed once with the setup: RSS over
    time, to show memory stays bounded whatever the length."""
    from vision.clips import pan_frames

    path = folder / "long-1080p.mp4"
    frames = pan_frames(read_photo(photo), width=1920, height=1080, frames=round(seconds * CLIP_FPS))
    write_h264(path, frames, fps=CLIP_FPS, keyframe_interval=CLIP_FPS * KEYFRAME_SECONDS)
    detect = partial(find_faces, min_confidence=setup.min_confidence, profile=setup.profile)
    detect(np.zeros((1080, 1920, 3), np.uint8))  # the detector's session, made before measuring
    before = rss_mb("VmRSS")
    reset_peak_rss()
    started = time.perf_counter()
    with RssWatch() as watch:
        processed = process_video(
            path,
            folder / "long-processed.mp4",
            find_faces=detect,
            style=STYLE,
            detect_every=setup.detect_every,
            limits=video_limits(),
        )
    wall = time.perf_counter() - started
    samples = watch.samples or [rss_mb("VmRSS")]
    quarter = max(1, len(samples) // 4)
    return {
        **asdict(setup),
        "seconds": seconds,
        "frames": processed.frames,
        "fps": round(processed.frames / wall, 1),
        "rss_before_mb": before,
        "peak_rss_mb": rss_mb(),
        "rss_first_quarter_mb": max(samples[:quarter]),
        "rss_last_quarter_mb": max(samples[-quarter:]),
    }


# --- The report ---------------------------------------------------------------------------------


def machine() -> dict:
    return {"cpu_model": cpu_model(), "cores": os.cpu_count()}


def meets_accuracy(result: dict) -> dict[str, bool]:
    medium, hard = result["settings"]["medium"], result["settings"]["hard"]
    return {
        "coverage": (medium["coverage"] or 0) >= TARGET_COVERAGE,
        "longest_leak": medium["longest_leak_frames"] <= TARGET_LONGEST_LEAK,
        "hard_above_photo": (hard["coverage"] or 0) > result["photo"]["hard"]["recall"],
    }


def _target(name: str, value: object, target: str, met: bool) -> dict:
    return {"name": name, "value": value, "target": target, "met": met}


def targets(accuracy: list[dict], speed: list[dict], setup: Setup) -> list[dict]:
    """Issue 13's targets, for `setup` (the defaults) where it was measured."""
    rows = []
    for result in accuracy:
        if Setup(result["profile"], result["min_confidence"], result["detect_every"]) != setup:
            continue
        medium, hard = result["settings"]["medium"], result["settings"]["hard"]
        met, photo_recall = meets_accuracy(result), result["photo"]["hard"]["recall"]
        rows += [
            _target("easy + medium face-frames covered", medium["coverage"], f">= {TARGET_COVERAGE}", met["coverage"]),
            _target(
                "longest run an easy or medium face stays uncovered (frames)",
                medium["longest_leak_frames"],
                f"<= {TARGET_LONGEST_LEAK}",
                met["longest_leak"],
            ),
            _target(
                "hard face-frames covered", hard["coverage"], f"> photo recall {photo_recall}", met["hard_above_photo"]
            ),
        ]
    for run in speed:
        same = Setup(run["profile"], run["min_confidence"], run["detect_every"]) == setup
        if same and run["cores"] > 1 and run["size"] in TARGET_FPS:
            target = TARGET_FPS[run["size"]]
            rows.append(
                _target(f"{run['size']} fps, whole machine", run["fps"], f">= {target:g}", run["fps"] >= target)
            )
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def accuracy_table(results: list[dict]) -> str:
    lines = [
        f"{'profile':<9}{'conf':>5}{'every':>6}   {'coverage % easy / medium / hard':>31}   {'leaking frames':>14}"
        f"{'longest':>8}   {'over-blur %':>11}   {'photo recall / hidden hard':>26}   {'tracks':>6}  targets",
    ]
    for result in results:
        settings_, photo, met = result["settings"], result["photo"]["hard"], meets_accuracy(result)
        coverage = " / ".join(_percent(settings_[name]["coverage"]) for name in SETTINGS)
        medium = settings_["medium"]
        photo_text = f"{photo['recall']:.3f} / {photo['hidden']:.3f}"
        missed = [name for name, ok in met.items() if not ok]
        verdict = f"missed: {', '.join(missed)}" if missed else "all met"
        lines.append(
            f"{result['profile']:<9}{result['min_confidence']:>5g}{result['detect_every']:>6}   {coverage:>31}   "
            f"{medium['leaking_frames']:>6}/{medium['frames_with_faces']:<7}{medium['longest_leak_frames']:>8}   "
            f"{_percent(result['over_blur']):>11}   {photo_text:>26}   "
            f"{result['tracks']:>6}  {verdict}"
        )
    return "\n".join(lines)


def speed_table(runs: list[dict]) -> str:
    lines = [
        f"{'size':<10}{'profile':<10}{'conf':>5}{'every':>6}{'cores':>6}{'fps':>7}  {'runs':<18}"
        f"{'CPU ms/frame':>13}{'RSS before / peak MB':>22}{'load':>6}"
    ]
    for run in runs:
        spread = ", ".join(f"{fps:g}" for fps in run["fps_runs"])
        memory = f"{run['rss_before_mb']:.0f} / {run['peak_rss_mb']:.0f}"
        lines.append(
            f"{run['size']:<10}{run['profile']:<10}{run['min_confidence']:>5g}{run['detect_every']:>6}{run['cores']:>6}"
            f"{run['fps']:>7.1f}  {spread:<18}{run['cpu_ms_per_frame']:>13.1f}{memory:>22}{run['load_average']:>6.1f}"
        )
    return "\n".join(lines)


def targets_table(rows: list[dict]) -> str:
    return "\n".join(
        f"  {'met ' if row['met'] else 'MISS'}  {row['name']}: {row['value']} ({row['target']})" for row in rows
    )
