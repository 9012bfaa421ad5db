"""Ground truth for video, made from photos, and scoring an anonymised video against it
(`make bench-video`). Pure functions over plain data and pixels: no Django.

Video with every face boxed in every frame is rare, so it is made: a camera's view (a crop window)
pans and zooms over a WIDER FACE photo, a few frames are degraded as real video is (motion blur,
JPEG artefacts, a dip in brightness), and the photo's boxes are mapped through each frame's window,
so every frame's true faces are known. A face cut by the frame's edge counts where at least
VISIBLE_SHARE of its box is in the frame, and is an ignore region (neither a miss nor over-blur) where less is.
"""

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.detector import SCORE, merge_duplicates, run_pass, to_faces, yunet
from vision.engines import DEFAULT_ENGINE
from vision.evaluation import HIDDEN_SHARE, SETTINGS, TruthBox
from vision.faces import Box, Face
from vision.profiles import PROFILES

CLIP_FPS = 25
CLIP_SECONDS = 3
# A keyframe every 2 s, as phones write them (1 to 2 s): the pipeline decodes predicted frames mostly.
KEYFRAME_SECONDS = 2
VISIBLE_SHARE = 0.5
# The view's widest (the photo's width, or its height at the frame's aspect) and narrowest: a zoom
# between 1x and 1.6x over the clip, one way or the other.
NARROWEST_VIEW = 0.62
# Degraded frames per clip: motion-blurred frames, frames with heavy JPEG artefacts, and one dip of
# DARK_FRAMES frames to DARK_GAIN of the brightness (an exposure change).
MOTION_BLURRED_SHARE = 0.08
JPEG_SHARE = 0.08
JPEG_QUALITY = (8, 20)
DARK_FRAMES = 2
DARK_GAIN = 0.45
MOTION_BLUR_PIXELS = (7, 19)  # the streak's length in the frame


@dataclass(frozen=True)
class View:
    """The part of the photo a frame shows: `width` photo pixels wide from (x, y), at the frame's aspect."""

    x: float
    y: float
    width: float


@dataclass(frozen=True)
class FrameFace:
    face: int  # its index in the photo's truth: the same face from frame to frame
    truth: TruthBox  # its box in the frame, clipped to it; invalid too where too little of it is visible


@dataclass(frozen=True)
class TruthClip:
    width: int
    height: int
    fps: int
    faces: list[list[FrameFace]]  # per frame
    degraded: dict[int, str]  # frame index -> "motion_blur", "jpeg" or "dark"

    @property
    def frames(self) -> int:
        return len(self.faces)


def camera_views(
    photo_width: int, photo_height: int, *, width: int, height: int, frames: int, rng: np.random.Generator
) -> list[View]:
    """A pan from one place of the photo to another while zooming in or out, eased at both ends as a
    hand-held camera moves: slow, then fastest mid-clip (where motion blur is likeliest)."""
    aspect = width / height
    widest = min(photo_width, photo_height * aspect)
    zooms = (1.0, NARROWEST_VIEW) if rng.random() < 0.5 else (NARROWEST_VIEW, 1.0)
    # Start and end centres as shares of the room the view has to move in.
    start, end = rng.random(2), rng.random(2)
    views = []
    for index in range(frames):
        phase = (1 - math.cos(math.pi * index / max(1, frames - 1))) / 2
        view_width = widest * (zooms[0] + (zooms[1] - zooms[0]) * phase)
        room_x, room_y = photo_width - view_width, photo_height - view_width / aspect
        share = start + (end - start) * phase
        views.append(View(x=room_x * share[0], y=room_y * share[1], width=view_width))
    return views


def degraded_frames(frames: int, *, rng: np.random.Generator) -> dict[int, str]:
    """Which frames are degraded, and how: none twice."""
    order = [int(index) for index in rng.permutation(frames)]
    dark_start = int(rng.integers(0, frames - DARK_FRAMES + 1))
    degraded = {index: "dark" for index in range(dark_start, dark_start + DARK_FRAMES)}
    order = [index for index in order if index not in degraded]
    blurred, jpeg = round(frames * MOTION_BLURRED_SHARE), round(frames * JPEG_SHARE)
    degraded |= {index: "motion_blur" for index in order[:blurred]}
    degraded |= {index: "jpeg" for index in order[blurred : blurred + jpeg]}
    return degraded


def frame_faces(truth: Sequence[TruthBox], view: View, *, width: int, height: int) -> list[FrameFace]:
    """The photo's faces in one frame: boxes scaled and moved by the view, clipped to the frame."""
    scale = width / view.width
    faces = []
    for index, box in enumerate(truth):
        x, y, box_width, box_height = box.bbox
        left, top = (x - view.x) * scale, (y - view.y) * scale
        right, bottom = left + box_width * scale, top + box_height * scale
        clipped = (max(0.0, left), max(0.0, top), min(float(width), right), min(float(height), bottom))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            continue
        visible = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) / max(1e-9, (right - left) * (bottom - top))
        bbox = (clipped[0], clipped[1], clipped[2] - clipped[0], clipped[3] - clipped[1])
        faces.append(FrameFace(index, TruthBox(bbox, box.level, box.invalid or visible < VISIBLE_SHARE)))
    return faces


def render_clip(
    photo: np.ndarray,
    truth: Sequence[TruthBox],
    *,
    width: int,
    height: int,
    frames: int = CLIP_FPS * CLIP_SECONDS,
    seed: int = 0,
) -> tuple[Iterator[np.ndarray], TruthClip]:
    """The clip's BGR frames (made one at a time, as an encoder takes them) and its ground truth.
    The same photo, size and seed give the same clip."""
    rng = np.random.default_rng(seed)
    views = camera_views(photo.shape[1], photo.shape[0], width=width, height=height, frames=frames, rng=rng)
    degraded = degraded_frames(frames, rng=rng)
    faces = [frame_faces(truth, view, width=width, height=height) for view in views]
    # Drawn now, so the frames do not depend on when they are made.
    streaks = {index: float(rng.uniform(*MOTION_BLUR_PIXELS)) for index in degraded}
    qualities = {index: int(rng.integers(*JPEG_QUALITY, endpoint=True)) for index in degraded}

    def frames_made() -> Iterator[np.ndarray]:
        for index, view in enumerate(views):
            scale = width / view.width
            matrix = np.array([[scale, 0, -view.x * scale], [0, scale, -view.y * scale]])
            frame = cv2.warpAffine(
                photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            kind = degraded.get(index)
            if kind == "motion_blur":
                following = views[min(index + 1, frames - 1)]
                before = views[max(index - 1, 0)]
                angle = math.atan2(following.y - before.y, following.x - before.x)
                frame = motion_blurred(frame, length=streaks[index], angle=angle)
            elif kind == "jpeg":
                encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, qualities[index]])[1]
                frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
            elif kind == "dark":
                frame = cv2.convertScaleAbs(frame, alpha=DARK_GAIN)
            yield frame

    return frames_made(), TruthClip(width=width, height=height, fps=CLIP_FPS, faces=faces, degraded=degraded)


def motion_blurred(bgr: np.ndarray, *, length: float, angle: float) -> np.ndarray:
    """The frame smeared `length` pixels along `angle` (radians), as a camera moving during the exposure."""
    size = max(3, math.ceil(length) | 1)
    kernel = np.zeros((size, size), np.float32)
    centre, reach = size // 2, length / 2
    start = (round(centre - reach * math.cos(angle)), round(centre - reach * math.sin(angle)))
    end = (round(centre + reach * math.cos(angle)), round(centre + reach * math.sin(angle)))
    cv2.line(kernel, start, end, 1.0, 1)
    return cv2.filter2D(bgr, -1, kernel / kernel.sum())


# --- What the pipeline anonymised ---------------------------------------------------------------


def grown(box: Box, *, margin: float, width: int, height: int) -> Box:
    """The region anonymising a face's box covers: grown by `margin` of its size a side (see
    vision.imaging.ANONYMISE_MARGIN), within the frame."""
    margin_x, margin_y = round(box.width * margin), round(box.height * margin)
    left, top = max(0, box.x - margin_x), max(0, box.y - margin_y)
    right, bottom = min(width, box.x + box.width + margin_x), min(height, box.y + box.height + margin_y)
    return Box(left, top, max(0, right - left), max(0, bottom - top))


def drawn_regions(tracks: Sequence[dict], *, frames: int, width: int, height: int, margin: float) -> list[list[Box]]:
    """Per frame, the regions the pipeline anonymised, from its tracks' JSON (vision.tracking.Track.as_json:
    boxes as [frame, x, y, width, height, detected])."""
    regions: list[list[Box]] = [[] for _ in range(frames)]
    for track in tracks:
        for frame, x, y, box_width, box_height, _ in track["boxes"]:
            if 0 <= frame < frames:
                box = Box(int(x), int(y), int(box_width), int(box_height))
                regions[frame].append(grown(box, margin=margin, width=width, height=height))
    return regions


# --- Scoring ------------------------------------------------------------------------------------


@dataclass
class SettingTally:
    face_frames: int = 0  # (face, frame) pairs counted in the setting
    covered: int = 0  # of them, at least HIDDEN_SHARE of the box anonymised
    frames_with_faces: int = 0
    leaking_frames: int = 0  # frames with a counted face not covered
    longest_leak: int = 0  # the most consecutive frames one face stayed uncovered

    def add(self, other: "SettingTally") -> None:
        self.face_frames += other.face_frames
        self.covered += other.covered
        self.frames_with_faces += other.frames_with_faces
        self.leaking_frames += other.leaking_frames
        self.longest_leak = max(self.longest_leak, other.longest_leak)


@dataclass
class VideoTally:
    settings: dict[str, SettingTally] = field(default_factory=lambda: {name: SettingTally() for name in SETTINGS})
    frames: int = 0
    pixels: int = 0
    over_blurred: int = 0  # pixels anonymised outside every true face box
    anonymised: int = 0  # pixels anonymised

    def add(self, other: "VideoTally") -> None:
        for name in SETTINGS:
            self.settings[name].add(other.settings[name])
        self.frames += other.frames
        self.pixels += other.pixels
        self.over_blurred += other.over_blurred
        self.anonymised += other.anonymised

    def as_json(self) -> dict:
        settings = {}
        for name, tally in self.settings.items():
            settings[name] = {
                "coverage": round(tally.covered / tally.face_frames, 5) if tally.face_frames else None,
                "face_frames": tally.face_frames,
                "uncovered_face_frames": tally.face_frames - tally.covered,
                "frames_with_faces": tally.frames_with_faces,
                "leaking_frames": tally.leaking_frames,
                "longest_leak_frames": tally.longest_leak,
            }
        return {
            "settings": settings,
            "frames": self.frames,
            "over_blur": round(self.over_blurred / self.pixels, 5) if self.pixels else None,
            "anonymised_area": round(self.anonymised / self.pixels, 5) if self.pixels else None,
        }


def _pixels(bbox: tuple[float, float, float, float]) -> tuple[slice, slice]:
    x, y, width, height = bbox
    return slice(round(y), round(y + height)), slice(round(x), round(x + width))


def score_clip(truth: TruthClip, regions: Sequence[Sequence[Box]]) -> VideoTally:
    """How well the anonymised `regions` (per frame) hid the clip's true faces: per WIDER setting,
    the (face, frame) pairs at least HIDDEN_SHARE covered, frames with a face uncovered, and each face's
    longest run of uncovered frames; and the share of the frames' area anonymised outside every face."""
    if len(regions) != truth.frames:
        raise ValueError(f"{len(regions)} frames of regions for a clip of {truth.frames}")
    tally = VideoTally(frames=truth.frames, pixels=truth.frames * truth.width * truth.height)
    runs: dict[str, dict[int, int]] = {name: {} for name in SETTINGS}  # face -> uncovered frames so far in a row
    for faces, boxes in zip(truth.faces, regions, strict=True):
        mask = np.zeros((truth.height, truth.width), dtype=bool)
        for box in boxes:
            mask[box.y : box.y + box.height, box.x : box.x + box.width] = True
        outside = mask.copy()
        hidden = {}
        for face in faces:
            rows, columns = _pixels(face.truth.bbox)
            outside[rows, columns] = False
            area = mask[rows, columns]
            hidden[face.face] = bool(area.size) and bool(area.mean() >= HIDDEN_SHARE)
        tally.anonymised += int(mask.sum())
        tally.over_blurred += int(outside.sum())
        for name in SETTINGS:
            setting, counted = tally.settings[name], [face for face in faces if face.truth.counts_in(name)]
            setting.face_frames += len(counted)
            setting.covered += sum(hidden[face.face] for face in counted)
            setting.frames_with_faces += bool(counted)
            setting.leaking_frames += any(not hidden[face.face] for face in counted)
            # A run ends where the face is covered or leaves the frame.
            runs[name] = {face.face: runs[name].get(face.face, 0) + 1 for face in counted if not hidden[face.face]}
            setting.longest_leak = max([setting.longest_leak, *runs[name].values()])
    return tally


# --- Detections shared between runs ---------------------------------------------------------------


class SharedDetections:
    """One profile's detections of each frame, at the lowest threshold asked for, run once and shared by
    every threshold and detect-every setting of a sweep. `at(min_confidence)` gives exactly the faces
    detect_faces(frame, min_confidence=...) finds: the network's rows below a threshold are dropped
    before boxes are merged there too. Frames are known by their pixels' hash."""

    def __init__(self, *, profile: str, floor: float, threads: int = 1, engine: str = DEFAULT_ENGINE) -> None:
        self.profile, self.floor, self.threads, self.engine = profile, floor, threads, engine
        self.rows: dict[bytes, np.ndarray] = {}
        self.detected = 0  # frames the network ran on

    def _rows(self, bgr: np.ndarray) -> np.ndarray:
        key = hashlib.blake2b(np.ascontiguousarray(bgr).data, digest_size=16).digest()
        if key not in self.rows:
            model = yunet(threads=self.threads, engine=self.engine)
            passes = PROFILES[self.profile].passes
            self.rows[key] = np.concatenate([run_pass(model, bgr, step, min_score=self.floor) for step in passes])
            self.detected += 1
        return self.rows[key]

    def faces(self, bgr: np.ndarray, *, min_confidence: float) -> list[Face]:
        if min_confidence < self.floor:
            raise ValueError(f"detections were kept down to {self.floor}, not {min_confidence}")
        rows = self._rows(bgr)
        rows = rows[rows[:, SCORE] >= max(min_confidence, 1e-6)]
        merged = merge_duplicates(rows, vote_iou=PROFILES[self.profile].vote_iou)
        return to_faces(merged, width=bgr.shape[1], height=bgr.shape[0])
