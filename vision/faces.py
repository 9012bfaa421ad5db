"""What a detector finds: plain values in the pixels of the image as a person sees it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Face:
    box: Box
    confidence: float  # in (0, 1]
    # Right eye, left eye, nose tip, right and left mouth corners (from the subject's view).
    landmarks: tuple[tuple[int, int], ...]

    def as_json(self) -> dict:
        return {
            "box": {"x": self.box.x, "y": self.box.y, "width": self.box.width, "height": self.box.height},
            "confidence": self.confidence,
            "landmarks": [[x, y] for x, y in self.landmarks],
        }


def select_faces(faces: list[Face], *, min_face_size: int = 0, max_faces: int | None = None) -> list[Face]:
    """Faces whose box's shorter side is at least `min_face_size` pixels; with `max_faces`, only that
    many of the largest. The order (most confident first) is kept."""
    kept = [face for face in faces if min(face.box.width, face.box.height) >= min_face_size]
    if max_faces is not None and len(kept) > max_faces:
        largest = set(sorted(kept, key=lambda face: face.box.width * face.box.height, reverse=True)[:max_faces])
        kept = [face for face in kept if face in largest]
    return kept
