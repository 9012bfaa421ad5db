"""The detector's profiles: which passes of the network each one runs. Plain data, light to import
(settings validate DETECTOR_PROFILE against it), no model or image library."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Pass:
    """One run of the network on a copy of the image whose long side is `long_side` pixels."""

    long_side: int
    mirrored: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    passes: tuple[Pass, ...]
    description: str


PROFILES = {
    profile.name: profile
    for profile in (
        Profile("fast", (Pass(640),), "one pass at 640 px: large and medium faces"),
        Profile("balanced", (Pass(480), Pass(1088)), "480 px for large faces, 1088 px for small ones"),
        Profile(
            "accurate",
            (Pass(640), Pass(640, mirrored=True), Pass(1280), Pass(1280, mirrored=True)),
            "640 and 1280 px, each also mirrored",
        ),
    )
}
