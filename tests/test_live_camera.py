"""The page's live camera mode in a real Chromium, whose fake camera plays a clip made from dev photos.

Chromium's fake capture device loops a .y4m file (640x480, made here with PyAV): the page streams
it over /stream to the real server and draws the faces it answers over the video.
"""

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import overlap, require_dev_set
from tests.live_server import Server, embedded_configuration, running_server
from tests.test_browser import (
    CARDS,
    CHROMIUM_ARGS,
    PHONE,
    Console,
    OpenPage,
    chromium_executable,
    expect_live,
    screenshot,
)

CLIP_SIZE = (640, 480)
CLIP_FPS = 15
SECONDS_PER_PHOTO = 1.5
# Two photos with clear faces: one person in a car, then two people side by side.
PHOTOS = (
    "59_peopledrivingcar_peopledrivingcar_59_229.jpg",
    "31_Waiter_Waitress_Waiter_Waitress_31_225.jpg",
)
# Both photos' faces must have been boxed within this long of the stream starting.
FOLLOW_SECONDS = 15
READOUT_WINDOW_MS = 2_000  # as in live-camera.js


@dataclass(frozen=True)
class ClipPhoto:
    name: str
    faces: list[tuple[float, float, float, float]]  # the WIDER boxes, in the clip's pixels


@dataclass(frozen=True)
class Clip:
    path: Path
    photos: list[ClipPhoto]


def letterboxed(photo: Image.Image) -> tuple[Image.Image, float, tuple[int, int]]:
    """The photo fitted into the clip's frame on grey: the frame, the scale and the photo's offset."""
    scale = min(CLIP_SIZE[0] / photo.width, CLIP_SIZE[1] / photo.height)
    size = (round(photo.width * scale), round(photo.height * scale))
    offset = ((CLIP_SIZE[0] - size[0]) // 2, (CLIP_SIZE[1] - size[1]) // 2)
    frame = Image.new("RGB", CLIP_SIZE, (64, 64, 64))
    frame.paste(photo.convert("RGB").resize(size, Image.Resampling.LANCZOS), offset)
    return frame, scale, offset


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The photos one after the other, each for SECONDS_PER_PHOTO, as raw YUV 4:2:0 in a .y4m file."""
    dev_set = require_dev_set()
    truth = json.loads((dev_set / "gt.json").read_text())
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    photos = []
    index = 0
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=CLIP_FPS)
        stream.width, stream.height = CLIP_SIZE
        stream.pix_fmt = "yuv420p"
        for name in PHOTOS:
            frame, scale, (left, top) = letterboxed(Image.open(dev_set / "images" / name))
            faces = [
                (left + x * scale, top + y * scale, width * scale, height * scale)
                for x, y, width, height in (face["bbox"] for face in truth[name] if not face["invalid"])
            ]
            photos.append(ClipPhoto(name, faces))
            video_frame = av.VideoFrame.from_image(frame).reformat(format="yuv420p")
            for _ in range(round(CLIP_FPS * SECONDS_PER_PHOTO)):
                video_frame.pts = index  # each frame a time of its own, in 1/CLIP_FPS s
                container.mux(stream.encode(video_frame))
                index += 1
        container.mux(stream.encode())
    return Clip(path, photos)


@pytest.fixture(scope="module")
def browser(clip: Clip) -> Iterator[Browser]:
    """Chromium with a fake camera playing the clip, and camera access granted without asking."""
    executable = chromium_executable()
    camera_args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip.path}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS + camera_args)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("live-camera")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as running:
        yield running


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_page(browser: Browser, console: Console) -> Iterator[OpenPage]:
    """Pages in contexts of their own that may use the camera; fails the test if any logged errors."""
    contexts = []

    def open_page(url: str, **context_options: object) -> Page:
        context = browser.new_context(permissions=["camera"], **context_options)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()
    if unexpected := console.unexpected():
        pytest.fail("The pages logged errors:\n" + "\n".join(unexpected), pytrace=False)


def start_live(page: Page) -> None:
    expect_live(page)
    page.get_by_role("button", name="Start live camera").click()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)


# In an animation frame, after the page's own drawing in it, so that both show the same answer: each
# face's box (in fractions of the video) and the colours the canvas has across the middle of its top edge.
DRAWN_FACES = """() => new Promise((resolve) => requestAnimationFrame(() => {
    const video = document.getElementById("live-video").getBoundingClientRect();
    const canvas = document.getElementById("live-overlay");
    const ratio = canvas.width / video.width;
    const context = canvas.getContext("2d");
    resolve([...document.querySelectorAll("#live-faces .live-face")].map((face) => {
        const box = face.getBoundingClientRect();
        const middle = Math.round((box.left - video.left + box.width / 2) * ratio);
        const top = Math.round((box.top - video.top) * ratio);
        const edge = context.getImageData(middle, Math.max(0, top - 2), 1, 5).data;
        return {
            x: (box.left - video.left) / video.width,
            y: (box.top - video.top) / video.height,
            width: box.width / video.width,
            height: box.height / video.height,
            edge: [...edge],
            title: face.title,
        };
    }));
}))"""


def in_clip_pixels(drawn: dict) -> dict:
    width, height = CLIP_SIZE
    return {
        "x": drawn["x"] * width,
        "y": drawn["y"] * height,
        "width": drawn["width"] * width,
        "height": drawn["height"] * height,
    }


def photo_boxed(drawn: list[dict], clip: Clip) -> str | None:
    """The clip's photo whose faces, and only those, the page has boxed; None for anything else."""
    boxes = [in_clip_pixels(face) for face in drawn]
    for photo in clip.photos:
        if len(boxes) == len(photo.faces) and all(
            max(overlap(box, face) for face in photo.faces) > 0.5 for box in boxes
        ):
            return photo.name
    return None


def outlined_on_canvas(face: dict) -> bool:
    """The canvas shows the box's green line where the face's box has its top edge."""
    pixels = [face["edge"][index : index + 4] for index in range(0, len(face["edge"]), 4)]
    return any(alpha > 200 and green > 150 and red < 120 for red, green, _, alpha in pixels)


def test_the_boxes_follow_the_faces_of_the_camera(open_page: OpenPage, server: Server, clip: Clip) -> None:
    page = open_page(server.base_url + "/")
    start_live(page)

    seen: set[str] = set()
    deadline = time.monotonic() + FOLLOW_SECONDS
    while seen != set(PHOTOS) and time.monotonic() < deadline:
        drawn = page.evaluate(DRAWN_FACES)
        if (name := photo_boxed(drawn, clip)) and all(outlined_on_canvas(face) for face in drawn):
            seen.add(name)

    assert seen == set(PHOTOS), f"the page boxed the faces of only {seen} within {FOLLOW_SECONDS} s"
    assert float(page.locator("#live-fps").inner_text()) > 0
    expect(page.locator("#live-rtt")).to_have_text(re.compile(r"^\d+ ms$"))
    # The readouts average the last two seconds: for the screenshot, two seconds past the first
    # frames, which wait for the server to load its model.
    page.wait_for_timeout(READOUT_WINDOW_MS)
    # Hovering a face shows its confidence.
    face = page.locator("#live-faces .live-face").first
    face.hover()
    expect(face.locator(".face-label")).to_be_visible()
    expect(face.locator(".face-label")).to_have_text(re.compile(r"^#1 \d+%$"))
    expect(face).to_have_attribute("title", re.compile(r"^Face 1: \d+% confident$"))
    screenshot(page, "live-camera")
    page.evaluate("window.cameraTrack = document.getElementById('live-video').srcObject.getVideoTracks()[0]")

    page.get_by_role("button", name="Stop").click()

    assert page.evaluate("window.cameraTrack.readyState") == "ended"
    expect(page.locator("#live-view")).to_be_hidden()
    expect(page.get_by_role("button", name="Start live camera")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("Stopped. The camera is off.")


# In an animation frame, as in DRAWN_FACES: the middle of the first face as the canvas shows it over
# the video, and the same part of the video itself. For each: its detail (the mean difference of
# neighbouring pixels' green) and its flatness (the share of neighbours of exactly the same colour);
# and how much of the face the canvas covers.
FIRST_FACE_COVER = """() => new Promise((resolve) => requestAnimationFrame(() => {
    const video = document.getElementById("live-video");
    const canvas = document.getElementById("live-overlay");
    const face = document.querySelector("#live-faces .live-face");
    if (!face) return resolve(null);
    const shown = video.getBoundingClientRect();
    const box = face.getBoundingClientRect();
    const ratio = canvas.width / shown.width;
    const x = Math.round((box.left - shown.left + box.width / 4) * ratio);
    const y = Math.round((box.top - shown.top + box.height / 4) * ratio);
    const [width, height] = [Math.round((box.width / 2) * ratio), Math.round((box.height / 2) * ratio)];
    const copy = Object.assign(document.createElement("canvas"), { width: canvas.width, height: canvas.height });
    copy.getContext("2d").drawImage(video, 0, 0, copy.width, copy.height);
    const measure = (pixels) => {
        let difference = 0, same = 0, pairs = 0;
        for (let row = 0; row < height; row++) {
            for (let column = 1; column < width; column++) {
                const at = 4 * (row * width + column);
                difference += Math.abs(pixels[at + 1] - pixels[at - 3]);
                same += [0, 1, 2].every((channel) => pixels[at + channel] === pixels[at - 4 + channel]);
                pairs += 1;
            }
        }
        return { detail: difference / pairs, flat: same / pairs };
    };
    const cover = canvas.getContext("2d").getImageData(x, y, width, height).data;
    const raw = copy.getContext("2d").getImageData(x, y, width, height).data;
    let opaque = 0;
    for (let index = 3; index < cover.length; index += 4) opaque += cover[index] === 255;
    resolve({ opaque: opaque / (width * height), canvas: measure(cover), video: measure(raw) });
}))"""


def first_face_cover(page: Page) -> dict:
    expect(page.locator("#live-faces .live-face").first).to_be_attached(timeout=10_000)
    cover = page.evaluate(FIRST_FACE_COVER)
    assert cover, "the face went before it was measured"
    return cover


def test_blurring_or_pixelating_hides_the_faces_in_the_preview(open_page: OpenPage, server: Server) -> None:
    page = open_page(server.base_url + "/")
    start_live(page)
    style = page.locator("#live-anonymise")

    shown = first_face_cover(page)
    style.click()
    expect(style).to_have_text("Faces blurred")
    blurred = first_face_cover(page)
    screenshot(page, "live-camera-blurred", full_page=False)
    style.click()
    expect(style).to_have_text("Faces pixelated")
    pixelated = first_face_cover(page)
    style.click()
    expect(style).to_have_text("Faces shown")

    # Shown, the canvas leaves the face to the video (but for the landmarks' dots); anonymised, it
    # covers it: blurred, with little detail left; pixelated, with squares of one colour.
    assert shown["opaque"] < 0.2, shown
    assert blurred["opaque"] > 0.95, blurred
    assert blurred["canvas"]["detail"] < blurred["video"]["detail"] / 2, blurred
    assert pixelated["opaque"] > 0.95, pixelated
    assert pixelated["canvas"]["flat"] > 0.7, pixelated


def test_a_snapshot_is_stored_as_a_detection_and_listed(
    open_page: OpenPage, server: Server, http: requests.Session
) -> None:
    page = open_page(server.base_url + "/")
    start_live(page)
    page.get_by_role("button", name="Faces shown").click()  # now blurred: snapshots are stored so too
    expect(page.locator("#live-faces .live-face").first).to_be_attached(timeout=10_000)
    count = page.locator(CARDS).count()

    page.get_by_role("button", name="Save a snapshot").click()

    expect(page.locator("#live-status")).to_have_text(re.compile(r"^Snapshot saved with [12] faces?"), timeout=10_000)
    expect(page.locator(CARDS)).to_have_count(count + 1)
    snapshot_id = page.locator(CARDS).first.get_attribute("data-id")
    detection = http.get(f"{server.base_url}/image/{snapshot_id}", timeout=10).json()
    assert detection["source"] == "stream"
    assert detection["annotate"] == "blur"
    assert detection["face_count"] in (1, 2)
    assert (detection["width"], detection["height"]) == CLIP_SIZE


def test_the_live_camera_fits_a_phone(open_page: OpenPage, server: Server) -> None:
    page = open_page(server.base_url + "/", viewport=PHONE, is_mobile=True, has_touch=True)
    start_live(page)

    expect(page.locator("#live-faces .live-face").first).to_be_attached(timeout=10_000)
    video = page.locator("#live-video").bounding_box()
    assert video
    assert video["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for name in ("Stop", "Faces shown", "Save a snapshot"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    page.locator("#live-title").scroll_into_view_if_needed()
    screenshot(page, "live-camera-phone", full_page=False)


def held_stream(server: Server) -> ClientConnection:
    """A script's stream on the server, once it has a place: a stream that just ended may still hold one."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return connect(server.base_url.replace("http", "ws", 1) + "/stream")
        except InvalidStatus:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_stream_the_server_closes_or_refuses_is_said_plainly(
    open_page: OpenPage, console: Console, tmp_path: Path
) -> None:
    # Frames of a few kilobytes are over this server's limit, and one stream per address is all it takes.
    limits = {"STREAM_MAX_FRAME_BYTES": "1000", "STREAM_MAX_PER_CLIENT": "1"}
    # Chromium logs the refused handshake: that is this test's doing.
    console.tolerate(r"WebSocket connection to '.*/stream' failed")
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **limits}) as server,
    ):
        page = open_page(server.base_url + "/")
        expect_live(page)
        start = page.get_by_role("button", name="Start live camera")
        status = page.locator("#live-status")

        start.click()

        expect(status).to_have_text("A frame was larger than the server accepts (1 KiB), so it closed the stream.")
        expect(status).to_have_attribute("data-state", "closed")
        expect(page.locator("#live-view")).to_be_hidden()
        expect(start).to_be_visible()

        with held_stream(server):
            start.click()

            expect(status).to_have_text(re.compile(r"^The server refused the live stream: .* too many streams"))
            expect(start).to_be_visible()
        page.close()  # before its server stops, which the page's /faces socket would try to reconnect to
