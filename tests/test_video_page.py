"""Videos on the page at /, in a real Chromium against the server as `make run` starts it: a clip made
with PyAV from a dev photo with faces is uploaded through the page's file input, its card's progress
bar moves with the live feed's "video.progress" messages, and the result plays in the page."""

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import av
import cv2
import numpy as np
import pytest
import requests
from playwright.sync_api import Page, WebSocket, expect

from tests import test_browser
from tests.cameras import FACES_PHOTO
from tests.conftest import require_dev_set
from tests.live_server import Server
from tests.test_browser import PHONE, UPLOAD_MS, Console, OpenPage, expect_live, screenshot
from vision.clips import pan_frames, write_video

# test_browser's fixtures, shared rather than copied: Chromium, a server as `make run` starts it, and
# pages that fail the test if they log an error.
browser = test_browser.browser
server = test_browser.server
console = test_browser.console
open_page = test_browser.open_page

# Long enough to take more than the half second between two progress messages on a fast machine.
CLIP_SIZE = (640, 360)
CLIP_FPS = 25
CLIP_FRAMES = 4 * CLIP_FPS
VIDEO_CARDS = "#videos li.video-card"
# Every value the progress bar of a video's card takes and every line its state says, in order: the
# page's own record, kept by a MutationObserver from before the upload.
RECORD_CARDS = """() => {
    window.videoStates = [];
    const list = document.getElementById("videos");
    new MutationObserver(() => {
        for (const card of list.querySelectorAll("li.video-card")) {
            const bar = card.querySelector("progress");
            const state = {
                id: card.dataset.id,
                status: card.dataset.status,
                value: bar && bar.hasAttribute("value") ? bar.value : null,
                text: card.querySelector(".video-state").textContent,
            };
            const last = window.videoStates.findLast((seen) => seen.id === state.id);
            if (!last || JSON.stringify(last) !== JSON.stringify(state)) window.videoStates.push(state);
        }
    }).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
}"""


def faces_video_frames() -> Iterator[np.ndarray]:
    """Four seconds of a camera panning over a dev photo of two people, 640x360."""
    photo = cv2.imread(str(require_dev_set() / "images" / FACES_PHOTO))
    return pan_frames(photo, width=CLIP_SIZE[0], height=CLIP_SIZE[1], frames=CLIP_FRAMES)


@pytest.fixture(scope="module")
def faces_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The camera's clip as a phone's H.264 MP4."""
    return write_video(tmp_path_factory.mktemp("videos") / "couple.mp4", faces_video_frames(), fps=CLIP_FPS)


def live_messages(page: Page) -> list[dict]:
    """The video messages the page's /faces websocket receives from now on."""
    messages: list[dict] = []

    def watch(socket: WebSocket) -> None:
        if socket.url.endswith("/faces"):
            socket.on("framereceived", lambda payload: messages.append(json.loads(payload)))

    page.on("websocket", watch)
    return messages


def card_of(page: Page, video_id: str):
    return page.locator(f'{VIDEO_CARDS}[data-id="{video_id}"]')


def finished(http: requests.Session, server: Server, video_id: str) -> dict:
    """The video's JSON once it is done or failed."""
    deadline = time.monotonic() + UPLOAD_MS / 1000
    while time.monotonic() < deadline:
        video = http.get(f"{server.base_url}/video/{video_id}", timeout=10).json()
        if video["status"] in ("done", "failed"):
            return video
        time.sleep(0.2)
    pytest.fail(f"video {video_id} still {video['status']} after {UPLOAD_MS / 1000:.0f} s", pytrace=False)


def expect_playing(page: Page, card_selector: str, video: dict) -> None:
    """The card's <video> shows the processed file and plays it: a frame decoded, time passing."""
    player = page.locator(f"{card_selector} video")
    expect(player).to_have_attribute("src", video["url"])
    expect(player).to_have_attribute("poster", video["poster_url"])
    expect(player).to_have_js_property("controls", True)
    # Muted, the browser lets a script start it without a click.
    player.evaluate("player => { player.muted = true; return player.play(); }")
    page.wait_for_function(
        "player => player.readyState >= 2 && player.currentTime > 0.3 && player.videoWidth > 0",
        arg=player.element_handle(),
        timeout=10_000,
    )
    assert player.evaluate("player => [player.videoWidth, player.videoHeight]") == list(CLIP_SIZE)
    assert player.evaluate("player => player.error") is None


def test_a_video_uploads_shows_its_progress_and_plays_on_every_page(
    open_page: OpenPage, server: Server, http: requests.Session, faces_video: Path
) -> None:
    uploader, watcher = open_page(), open_page(server.base_url + "/")
    messages = live_messages(uploader)
    uploader.goto(server.base_url + "/")
    for page in (uploader, watcher):
        expect_live(page)
        page.evaluate(RECORD_CARDS)
    uploader.select_option("#annotate", "blur")

    uploader.set_input_files("#image", faces_video)

    row = uploader.locator("#uploads li")
    expect(row.locator(".upload-name")).to_have_text("couple.mp4")
    expect(uploader.locator(VIDEO_CARDS)).to_have_count(1, timeout=UPLOAD_MS)
    video_id = uploader.locator(VIDEO_CARDS).first.get_attribute("data-id")
    assert video_id
    for page in (uploader, watcher):
        expect(card_of(page, video_id)).to_have_attribute("data-status", "done", timeout=UPLOAD_MS)
    video = http.get(f"{server.base_url}/video/{video_id}", timeout=10).json()
    assert video["status"] == "done", video
    assert video["annotate_style"] == "blur"  # the style chosen on the page went with the upload
    assert video["frames_total"] == CLIP_FRAMES
    assert video["track_count"] >= 1, video  # two people's faces

    # The bar moved with the live feed: each progress message's frames were shown, in order, on both pages.
    progress = [m["video"] for m in messages if m.get("type") == "video.progress" and m["video"]["id"] == video_id]
    assert progress, f"no video.progress message reached the page: {messages}"
    assert any(m.get("type") == "video.done" and m["video"]["id"] == video_id for m in messages)
    for page in (uploader, watcher):
        states = [state for state in page.evaluate("window.videoStates") if state["id"] == video_id]
        running = [state for state in states if state["status"] == "running"]
        assert running, states
        shown = [re.match(r"(\d+) of (\d+) frames", state["text"]) for state in running]
        assert all(shown), running
        assert {int(match[2]) for match in shown if match} == {CLIP_FRAMES}
        values = [state["value"] for state in running]
        assert values == sorted(values), values  # never backwards
        assert len(set(values)) >= 2, values  # it moved: the first message says 0 frames, a later one more
        assert all(0 <= value <= 1 for value in values), values
        assert states[-1]["status"] == "done"
    # The uploader's page drew every progress message it received (a catch-up may add more states).
    uploader_texts = {state["text"] for state in uploader.evaluate("window.videoStates")}
    for message in progress:
        assert any(text.startswith(f"{message['frames_done']} of {CLIP_FRAMES} frames") for text in uploader_texts), (
            message,
            uploader_texts,
        )

    expect(row).to_have_class(re.compile(r"\bdone\b"))
    expect(row.locator(".upload-status")).to_contain_text("tracked, ready to play below")
    for page in (uploader, watcher):
        card = card_of(page, video_id)
        expect(card.locator(".video-state")).to_contain_text(re.compile(r"\d+ faces? tracked · 0:04"))
        expect(card.locator(".video-title")).to_contain_text("640\N{MULTIPLICATION SIGN}360")
        expect_playing(page, f'{VIDEO_CARDS}[data-id="{video_id}"]', video)
    expect(card_of(uploader, video_id).locator(".video-title")).to_contain_text("couple.mp4")

    # The download link saves the processed video itself: an MP4 of every frame, at the clip's size.
    with uploader.expect_download() as download:
        card_of(uploader, video_id).locator("a.video-download").click()
    assert download.value.suggested_filename.endswith(".mp4"), download.value.suggested_filename
    saved = Path(download.value.path()).read_bytes()
    assert saved == http.get(urljoin(server.base_url, video["url"]), timeout=10).content
    with av.open(io.BytesIO(saved)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", *CLIP_SIZE)
        assert sum(1 for _ in container.decode(video=0)) == CLIP_FRAMES
    uploader.locator("#videos-title").scroll_into_view_if_needed()
    screenshot(uploader, "video-desktop")


def test_a_page_opened_later_catches_up_and_fits_a_phone(
    open_page: OpenPage, server: Server, http: requests.Session, faces_video: Path
) -> None:
    with faces_video.open("rb") as file:
        answer = http.post(
            server.base_url + "/video",
            files={"video": (faces_video.name, file)},
            data={"annotate": "pixelate"},
            timeout=30,
        )
    assert answer.status_code == 202, answer.text
    video = finished(http, server, answer.json()["id"])
    assert video["status"] == "done", video

    # Done before the page opened: no message will come for it, only GET /video can show it.
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    with page.expect_response(lambda response: "/video?" in response.url) as listed:
        page.goto(server.base_url + "/")
    expect_live(page)

    assert listed.value.ok
    card = card_of(page, video["id"])
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "done")
    expect(card.locator(".video-title")).to_have_text("Video · 0:04 · 640\N{MULTIPLICATION SIGN}360")
    expect_playing(page, f'{VIDEO_CARDS}[data-id="{video["id"]}"]', video)
    ids = [item.get_attribute("data-id") for item in page.locator(VIDEO_CARDS).all()]
    assert len(ids) == len(set(ids)), ids
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#videos-title").scroll_into_view_if_needed()
    screenshot(page, "video-phone", full_page=False)


def test_a_file_that_is_not_a_video_or_a_video_cut_short_says_why(
    open_page: OpenPage, console: Console, server: Server, http: requests.Session, faces_video: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "holiday.mp4"  # the browser calls it video/mp4 from its name; the server reads the bytes
    fake.write_text("Not a video, only words.\n" * 40)
    with fake.open("rb") as file:
        refusal = http.post(server.base_url + "/video", files={"video": (fake.name, file, "video/mp4")}, timeout=30)
    assert refusal.status_code == 415, refusal.text
    # Its index first, so the server takes it (202) and finds the frames missing only while processing.
    whole = write_video(tmp_path / "whole.mp4", faces_video_frames(), faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    # Chromium logs every 4xx answer to a request; the refusal is what this test asks for.
    console.tolerate(r"status of 415 \(Unsupported Media Type\) \(at http://[^ ]+/video\)")
    page = open_page(server.base_url + "/")
    expect_live(page)
    cards = page.locator(VIDEO_CARDS).count()

    page.set_input_files("#image", [fake, cut])

    refused = page.locator("#uploads li").filter(has_text="holiday.mp4")
    expect(refused).to_have_class(re.compile(r"\bfailed\b"), timeout=UPLOAD_MS)
    expect(refused.locator(".upload-status")).to_have_text(refusal.json()["error"]["message"])
    failed = page.locator("#uploads li").filter(has_text="cut.mp4")
    expect(failed).to_have_class(re.compile(r"\bfailed\b"), timeout=UPLOAD_MS)
    expect(page.locator(VIDEO_CARDS)).to_have_count(cards + 1)  # a card for the one the server took
    card = page.locator(VIDEO_CARDS).first
    video = http.get(f"{server.base_url}/video/{card.get_attribute('data-id')}", timeout=10).json()
    assert video["status"] == "failed", video
    assert video["error"]["code"] == "corrupt_video", video
    expect(card).to_have_attribute("data-status", "failed")
    expect(card.locator(".video-state")).to_have_text(video["error"]["message"])
    expect(card.locator("video")).to_have_count(0)
    expect(failed.locator(".upload-status")).to_have_text(video["error"]["message"])
    screenshot(page, "video-refused", full_page=False)
