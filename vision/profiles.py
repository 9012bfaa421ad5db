"""The detector's profiles: which passes of the network each one runs. Plain data and arithmetic,
light to import (settings validate DETECTOR_PROFILE against it), no model or image library.

YuNet finds faces from about 10 to a few hundred pixels in the copy it sees. A pass sized by the
photo's long side sees the photo's faces at the same share of the frame whatever its size: right for
large faces. Small faces need pixels of their own: a detail pass shrinks a big photo no further than
its `min_scale` (DETAIL_MIN_SCALE), so a 12-megapixel group photo's 40-px faces reach the network at
16 px or more, and no pass enlarges a photo past MAX_ENLARGEMENT, where a small photo's faces gain
nothing but the cost. A photo's passes cost at most those of a 12-megapixel one (MAX_PASS_PIXELS).
"""

import math
from dataclasses import dataclass

# Past 1.25 times (the 1280-px pass on a 1024-px photo), enlarging lost more easy faces than it found
# hard ones on the dev sample (a 1536-px pass: AP 0.865 / 0.849 / 0.798 against 0.884 / 0.864 / 0.790).
MAX_ENLARGEMENT = 1.25
# The most pixels one pass's copy may hold, so a huge photo's detail pass costs at most ~1.6 times the
# 1280-px pass on a 1024-px photo: a 12-megapixel photo at 0.4 fits, a 24-megapixel one gets 0.29. At
# 4 megapixels a 24-megapixel photo took 4 times as long as before and onnxruntime kept 280 MB more.
MAX_PASS_PIXELS = 2_000_000
# A detail pass shrinks a photo no further than this: up to 3,200 px (a dev photo enlarged 3 times) the
# 1280-px pass's own size rules, past it faces keep 0.4 of their pixels. 0.5 lost more easy faces than
# it found hard ones on the enlarged dev sample (README).
DETAIL_MIN_SCALE = 0.4


@dataclass(frozen=True)
class Pass:
    """One run of the network on a copy of the photo whose long side is `long_side` pixels, but
    never smaller than `min_scale` times the photo (within MAX_PASS_PIXELS) nor larger than
    MAX_ENLARGEMENT times it; mirrored left to right when `mirrored`."""

    long_side: int
    mirrored: bool = False
    min_scale: float = 0.0

    def scale(self, width: int, height: int) -> float:
        """How many times larger than the photo the copy this pass sees is."""
        scale = max(self.long_side / max(width, height), self.min_scale)
        return min(scale, MAX_ENLARGEMENT, math.sqrt(MAX_PASS_PIXELS / (width * height)))


@dataclass(frozen=True)
class Profile:
    name: str
    passes: tuple[Pass, ...]
    description: str
    # Boxes overlapping the kept one this much are views of the same face and vote on its position
    # (1.0: none do, plain non-maximum suppression). On the dev sample's odd half votes at 0.6 beat NMS
    # and votes at 0.45 or 0.7 for several passes, and lost to NMS for fast's single pass.
    vote_iou: float = 1.0


PROFILES = {
    profile.name: profile
    for profile in (
        Profile("fast", (Pass(640),), "one pass at 640 px: large and medium faces"),
        Profile(
            "balanced",
            (Pass(480), Pass(1280, min_scale=DETAIL_MIN_SCALE)),
            "480 px for large faces, 1280 px for small ones",
            vote_iou=0.6,
        ),
        Profile(
            "accurate",
            (
                Pass(640),
                Pass(640, mirrored=True),
                Pass(1088, mirrored=True, min_scale=DETAIL_MIN_SCALE),
                Pass(1280, min_scale=DETAIL_MIN_SCALE),
            ),
            "640 px, also mirrored, 1088 px mirrored and 1280 px",
            vote_iou=0.6,
        ),
    )
}


# A video's detector runs on every Nth frame, N at most this: the video tracker holds (MISSED_ROUNDS
# + 1) rounds of frames back (vision.tracking), 44 of them at 10, 132 MB at 1080p. Here, light to
# import, because the settings check VIDEO_DETECT_EVERY against it.
MAX_DETECT_EVERY = 10
