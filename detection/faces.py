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
