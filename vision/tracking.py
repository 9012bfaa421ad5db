"""Faces followed across a video's frames, so that a face is covered in every frame it is in, not
only in those where the detector found it. Pure arithmetic on boxes: no video, no Django.

The detector runs on every `detect_every`-th frame (a detection round). Each round's faces are matched
to the tracks so far (Hungarian assignment on overlap with where each track is predicted to be) in
two passes, as ByteTrack does: the faces at `min_confidence` or more first, and a face matched to
none of them starts a track; then the weaker faces (KEEP_CONFIDENCE or more) go to the tracks still
unmatched, and only keep those going. A face the detector is sure of in one frame is often found at
0.15 to 0.4 in the next (motion blur, JPEG artefacts, a darker frame, a turned head): without the
second pass each such dip was a gap, and past MISSED_ROUNDS a leak (`make bench-video --limit 10`, at
0.4 every 3rd frame: the longest run of frames a face stayed uncovered went from 25 to 9).

The frames are given out `lookahead` frames behind the newest round, so that each frame's boxes are
decided knowing what the next rounds found:

- between two rounds that found a track, its box moves in a straight line from one to the other;
- when the detector misses a face for up to MISSED_ROUNDS rounds (motion blur, a turned head) and
  finds it again, the gap is filled the same way, as if it had never been lost;
- a track starts BACKFILL_FRAMES (at least back to the previous round) before the round that first
  found it, with that first box, growing frame by frame backwards as a held box does: a face coming
  into the picture, or into focus, is covered before the detector is sure of it;
- when the detector loses a face for good, its box stays where it was last seen, growing by
  HOLD_GROWTH of its size a frame (at most MAX_HOLD_GROWTH), for HOLD_FRAMES frames (at least
  MISSED_ROUNDS rounds), then the track ends; a face found again later starts a new track;
- each box the detector found is smoothed with the rounds before and after it (weights 1, 2, 1),
  and every box is given TRACK_MARGIN of its size on each side.
"""

from array import array
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from vision.faces import Box, Face

# The weakest detection that may keep a track going (never start one): see the module's docstring.
KEEP_CONFIDENCE = 0.15
# Detection rounds a track may go unseen and still be matched (then its gap is interpolated).
MISSED_ROUNDS = 3
# Frames a lost track's box is held (at least MISSED_ROUNDS rounds), and how it grows while held.
HOLD_FRAMES = 8
HOLD_GROWTH = 0.02
MAX_HOLD_GROWTH = 0.3
# Frames a track is covered before the round that first found it (at least back to the round before):
# as long as a lost one is held (`make bench-video`: medium coverage 99.4% -> 99.6% at 0.3, every 2nd).
BACKFILL_FRAMES = 8
# Each side of every box is pushed out by this share of its width or height.
TRACK_MARGIN = 0.05
# A face matches a track when it overlaps the track's predicted box this much, or its centre is
# within this share of the track's size from the predicted centre.
MIN_IOU = 0.1
MAX_CENTRE_DISTANCE = 0.6


@dataclass(frozen=True)
class TrackedBox:
    track_id: int
    box: Box
    detected: bool  # the detector found it in this frame (otherwise interpolated, backfilled or held)
    confidence: float = 1.0  # the detector's, at the nearest round that found it
    landmarks: tuple[tuple[int, int], ...] = ()

    def as_face(self) -> Face:
        return Face(box=self.box, confidence=self.confidence, landmarks=self.landmarks)


@dataclass
class _Key:
    """A round that found the track: its box as corners (x1, y1, x2, y2), landmarks relative to it."""

    frame: int
    corners: np.ndarray
    confidence: float
    landmarks: np.ndarray  # (5, 2), as shares of the box's width and height


@dataclass
class Track:
    id: int
    first_frame: int = -1
    last_frame: int = -1
    # Its box in every frame it covers, six ints a frame (frame, x, y, w, h, detected) in a flat array:
    # 24 bytes a frame rather than ~150 as tuples, for a crowd followed through a long video.
    rows: array = field(default_factory=lambda: array("i"), repr=False)
    keys: list[_Key] = field(default_factory=list, repr=False)
    missed: int = 0  # rounds in a row without a match
    ended: bool = False  # lost for more than MISSED_ROUNDS rounds: matched no more

    @property
    def boxes(self) -> list[tuple[int, int, int, int, int, int]]:
        """(frame, x, y, width, height, detected 0 or 1) for each frame it covers."""
        values = self.rows.tolist()
        return [tuple(values[start : start + 6]) for start in range(0, len(values), 6)]  # type: ignore[misc]

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "boxes": [list(row) for row in self.boxes],
        }

    def predicted(self, frame: int) -> np.ndarray:
        """Where the track should be at `frame`: moving on as between its last two rounds."""
        last = self.keys[-1]
        if len(self.keys) < 2 or frame <= last.frame:
            return last.corners
        before = self.keys[-2]
        velocity = (last.corners - before.corners) / (last.frame - before.frame)
        return last.corners + velocity * (frame - last.frame)


def _ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of each box (corners) of `a` with each of `b`."""
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    overlap = np.clip(width, 0, None) * np.clip(height, 0, None)
    areas_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    areas_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return overlap / np.maximum(areas_a[:, None] + areas_b[None, :] - overlap, 1e-9)


def detection_floor(min_confidence: float) -> float:
    """How weak a face the detector should report for a tracker starting tracks at `min_confidence`."""
    return min(min_confidence, KEEP_CONFIDENCE)


def _corners(box: Box) -> np.ndarray:
    return np.array([box.x, box.y, box.x + box.width, box.y + box.height], dtype=np.float64)


def _grown(corners: np.ndarray, share: float) -> np.ndarray:
    width, height = corners[2] - corners[0], corners[3] - corners[1]
    return corners + np.array([-width, -height, width, height]) * share


class FaceTracker:
    """Tracks for one video of `width` x `height` frames whose every `detect_every`-th frame is detected.

    Feed it each round's faces with `detected(frame, faces)` (frames 0, N, 2N, ..., in order, and the
    last frame), then take each frame's boxes with `boxes(frame)`, in order, once `ready(frame)`
    (the round `lookahead` frames later is in), or any frame after `finish()`.
    """

    def __init__(self, *, width: int, height: int, detect_every: int, min_confidence: float) -> None:
        self.width, self.height = width, height
        self.min_confidence = min_confidence
        self.detect_every = max(1, detect_every)
        self.hold_frames = max(HOLD_FRAMES, MISSED_ROUNDS * self.detect_every)
        self.backfill_frames = max(BACKFILL_FRAMES, self.detect_every - 1)
        # Far enough ahead to know whether a track missed by a round is found again within
        # MISSED_ROUNDS rounds, and to backfill a track found in a later round.
        self.lookahead = max((MISSED_ROUNDS + 1) * self.detect_every, self.backfill_frames)
        self.tracks: list[Track] = []  # every track, in order of its first frame: the faces file
        self.live: list[Track] = []  # tracks whose boxes are still being given out
        self.newest_round = -1
        self.finished = False
        self._next_id = 1

    def ready(self, frame: int) -> bool:
        return self.finished or frame <= self.newest_round - self.lookahead

    def detected(self, frame: int, faces: list[Face]) -> None:
        """A round's faces, at `frame` (after every round before it), down to detection_floor()."""
        self.newest_round = frame
        candidates = [track for track in self.live if not track.ended]
        strong = [face for face in faces if face.confidence >= self.min_confidence]
        weak = [face for face in faces if KEEP_CONFIDENCE <= face.confidence < self.min_confidence]
        unmatched = self._continue(candidates, strong, frame)
        for face in unmatched:
            track = Track(id=self._next_id, keys=[self._key(frame, face)])
            self._next_id += 1
            self.tracks.append(track)
            self.live.append(track)
        lost = [track for track in candidates if track.keys[-1].frame != frame]
        self._continue(lost, weak, frame)
        for track in lost:
            if track.keys[-1].frame != frame:
                track.missed += 1
                track.ended = track.missed > MISSED_ROUNDS

    def _continue(self, tracks: list[Track], faces: list[Face], frame: int) -> list[Face]:
        """Each face matched to one of `tracks` goes on that track; the faces matched to none are returned."""
        matched_tracks, matched_faces = self._match(tracks, faces, frame)
        for track_index, face_index in zip(matched_tracks, matched_faces, strict=True):
            tracks[track_index].keys.append(self._key(frame, faces[face_index]))
            tracks[track_index].missed = 0
        taken = set(matched_faces)
        return [face for index, face in enumerate(faces) if index not in taken]

    def finish(self) -> None:
        """No more rounds: every frame's boxes can be given out."""
        self.finished = True
        for track in self.live:
            track.ended = True

    def boxes(self, frame: int) -> list[TrackedBox]:
        """The frame's boxes, one per track covering it; frames must be asked in order."""
        result = []
        for track in self.live:
            tracked = self._box_at(track, frame)
            if tracked is None:
                continue
            if track.first_frame < 0:
                track.first_frame = frame
            track.last_frame = frame
            box = tracked.box
            track.rows.extend((frame, box.x, box.y, box.width, box.height, int(tracked.detected)))
            result.append(tracked)
            # Rounds before the one before this frame's are needed no more (frames come in order):
            # a track's keys stay a few, whatever the video's length.
            while len(track.keys) >= 3 and track.keys[2].frame <= frame:
                del track.keys[0]
        # A track ended and past its hold gives out no more boxes.
        self.live = [
            track for track in self.live if not (track.ended and frame >= track.keys[-1].frame + self.hold_frames)
        ]
        return result

    def _match(self, tracks: list[Track], faces: list[Face], frame: int) -> tuple[list[int], list[int]]:
        if not tracks or not faces:
            return [], []
        predicted = np.array([track.predicted(frame) for track in tracks])  # (tracks, 4)
        found = np.array([_corners(face.box) for face in faces])  # (faces, 4)
        overlaps = _ious(predicted, found)
        sizes = np.maximum(np.maximum(predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1]), 1.0)
        centres, found_centres = (predicted[:, :2] + predicted[:, 2:]) / 2, (found[:, :2] + found[:, 2:]) / 2
        distances = np.linalg.norm(centres[:, None] - found_centres[None], axis=2) / sizes[:, None]
        cost = np.where((overlaps >= MIN_IOU) | (distances <= MAX_CENTRE_DISTANCE), (1 - overlaps) + distances, 1e6)
        rows, columns = linear_sum_assignment(cost)
        kept = [
            (row, column)
            for row, column in zip(rows.tolist(), columns.tolist(), strict=True)
            if cost[row, column] < 1e6
        ]
        return [row for row, _ in kept], [column for _, column in kept]

    @staticmethod
    def _key(frame: int, face: Face) -> _Key:
        box = face.box
        landmarks = np.array(face.landmarks, dtype=np.float64).reshape(-1, 2)
        relative = (landmarks - [box.x, box.y]) / [max(box.width, 1), max(box.height, 1)]
        return _Key(frame=frame, corners=_corners(box), confidence=face.confidence, landmarks=relative)

    def _smoothed(self, track: Track, index: int) -> np.ndarray:
        """The round's box averaged with the rounds just before and after it that found the track."""
        keys, key = track.keys, track.keys[index]
        total, weight = key.corners * 2, 2.0
        for other in (index - 1, index + 1):
            if 0 <= other < len(keys) and abs(keys[other].frame - key.frame) <= self.detect_every:
                total, weight = total + keys[other].corners, weight + 1
        return total / weight

    def _box_at(self, track: Track, frame: int) -> TrackedBox | None:
        keys = track.keys
        first, last = keys[0].frame, keys[-1].frame
        if frame < first - self.backfill_frames:
            return None
        if frame <= first:
            # Before the detector was sure: grown as a held box, the face may be coming from any side.
            return self._tracked(track, self._smoothed(track, 0), keys[0], held=first - frame, detected=frame == first)
        if frame >= last:
            # Past the last round that found it: lost (ready() keeps a frame a later round may still
            # fill in from being asked), held where it was last seen.
            held = frame - last
            if held >= self.hold_frames:
                return None
            return self._tracked(track, self._smoothed(track, len(keys) - 1), keys[-1], held=held, detected=held == 0)
        # Between two rounds that found it: a straight line from one to the next.
        after = next(index for index, key in enumerate(keys) if key.frame >= frame)
        if keys[after].frame == frame:
            return self._tracked(track, self._smoothed(track, after), keys[after], detected=True)
        before = after - 1
        share = (frame - keys[before].frame) / (keys[after].frame - keys[before].frame)
        corners = self._smoothed(track, before) * (1 - share) + self._smoothed(track, after) * share
        return self._tracked(track, corners, keys[after] if share >= 0.5 else keys[before])

    def _tracked(
        self, track: Track, corners: np.ndarray, key: _Key, *, held: int = 0, detected: bool = False
    ) -> TrackedBox:
        corners = _grown(corners, TRACK_MARGIN + min(held * HOLD_GROWTH, MAX_HOLD_GROWTH))
        left, top = max(0, round(corners[0])), max(0, round(corners[1]))
        right, bottom = min(self.width, round(corners[2])), min(self.height, round(corners[3]))
        right, bottom = max(right, min(left + 1, self.width)), max(bottom, min(top + 1, self.height))
        box = Box(left, top, right - left, bottom - top)
        points = np.rint(key.landmarks * [box.width, box.height] + [box.x, box.y])
        points = np.clip(points, 0, [self.width - 1, self.height - 1]).astype(int).tolist()
        landmarks = tuple((x, y) for x, y in points)
        return TrackedBox(track_id=track.id, box=box, detected=detected, confidence=key.confidence, landmarks=landmarks)
