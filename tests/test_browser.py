"""In a real browser: the live page and the admin, against the server as ./entrypoint.sh starts it.

Chromium comes from Debian (/usr/bin/chromium), driven by Playwright's sync API: these are plain
`def` tests, since pytest-asyncio runs in auto mode and the sync API refuses a running event loop.
"""

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Response, expect, sync_playwright

from tests.conftest import ASTRONAUT_FACE, overlap
from tests.live_server import (
    REPO_ROOT,
    Server,
    embedded_configuration,
    free_port,
    queue_configuration,
    running_server,
    running_worker,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "a-long-test-password"
SUPERUSER = {"DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}

CARDS = "#detections li.card"
# How quickly a new detection must reach every open page once it exists.
LIVE_MS = 2_000
# An upload's whole round trip, detection included: generous for a busy CI machine.
UPLOAD_MS = 30_000
# After a restart the page retries with backoff (0.5, 1, 2, 4, 8, 16, then 30 s, each +-25 %, see
# live.js) while the server migrates and starts (~8 s, more on a busy machine): the retry that
# succeeds can come up to one longest wait, 37.5 s, after the server is up.
RECONNECT_MS = 30_000 * 5 // 4 + 5_000
PHONE = {"width": 390, "height": 844}

OpenPage = Callable[..., Page]


@dataclass
class Console:
    """What the pages logged as errors or threw; a test may tolerate the errors it causes on purpose."""

    errors: list[str] = field(default_factory=list)
    tolerated: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._logged)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught {error.name}: {error.message}"))

    def _logged(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text} (at {message.location.get('url')})")

    def tolerate(self, pattern: str) -> None:
        self.tolerated.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [error for error in self.errors if not any(pattern.search(error) for pattern in self.tolerated)]


@dataclass(frozen=True)
class Restartable:
    """A server's data and port, so that it can be stopped and started again where the page expects it."""

    root: Path
    configuration: dict[str, str]
    port: int

    def run(self) -> AbstractContextManager[Server]:
        return running_server(self.root, self.configuration, port=self.port)


def chromium_executable() -> str:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module, as `make run` starts it, with an admin user."""
    root = tmp_path_factory.mktemp("browser")
    with embedded_configuration(root) as configuration, running_server(root, {**configuration, **SUPERUSER}) as running:
        yield running


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Restartable]:
    """A server of the test's own: stopping the module's server would break the other tests."""
    with embedded_configuration(tmp_path) as configuration:
        yield Restartable(tmp_path, {**configuration, **SUPERUSER}, free_port())


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_page(browser: Browser, console: Console) -> Iterator[OpenPage]:
    """Each page in a browser context of its own, like separate visitors; fails the test if any page logged errors."""
    contexts = []

    def open_page(url: str | None = None, **context_options: object) -> Page:
        context = browser.new_context(**context_options)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        if url:
            page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()
    if unexpected := console.unexpected():
        pytest.fail("The pages logged errors:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture(scope="module")
def astronaut_file(tmp_path_factory: pytest.TempPathFactory, astronaut_jpeg: bytes) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    path.write_bytes(astronaut_jpeg)
    return path


@pytest.fixture(scope="module")
def two_faces_file(tmp_path_factory: pytest.TempPathFactory, two_faces_jpeg: bytes) -> Path:
    path = tmp_path_factory.mktemp("photos") / "two-faces.jpg"
    path.write_bytes(two_faces_jpeg)
    return path


@pytest.fixture(scope="module")
def a_few_detections(
    server: Server, http: requests.Session, astronaut_file: Path, two_faces_file: Path, coffee_png: bytes
) -> list[dict]:
    """Cards to look at for the tests that do not upload: one face, two faces, none."""
    coffee_file = astronaut_file.with_name("coffee.png")
    coffee_file.write_bytes(coffee_png)
    return [upload(http, server, path) for path in (astronaut_file, two_faces_file, coffee_file)]


def upload(http: requests.Session, server: Server, path: Path) -> dict:
    with path.open("rb") as image:
        response = http.post(server.base_url + "/image", files={"image": (path.name, image)}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def expect_live(page: Page, timeout: float = 10_000) -> None:
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "connected", timeout=timeout)
    expect(connection).to_have_text("Live")


def card_of(page: Page, detection: dict) -> Locator:
    return page.locator(f'{CARDS}[data-id="{detection["id"]}"]')


def is_catch_up(response: Response) -> bool:
    # What the page asks for once its websocket is open: everything after the newest card it shows.
    return "/image?" in response.url and "after=" in response.url


def percent(confidence: float) -> str:
    return f"{int(confidence * 100 + 0.5)}%"  # Math.round, not Python's round-half-to-even


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """For people to look at (artifacts/ is git-ignored); a modal dialog is only ever seen in the viewport."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def all_images_loaded(page: Page, selector: str) -> None:
    """Every image under `selector` was fetched and decoded: a broken or missing file has naturalWidth 0."""
    page.wait_for_function(
        """selector => {
            const images = [...document.querySelectorAll(selector)];
            return images.length > 0 && images.every((image) => image.complete && image.naturalWidth > 0);
        }""",
        arg=selector,
        timeout=10_000,
    )


def test_an_upload_appears_live_on_every_open_page(open_page: OpenPage, server: Server, astronaut_file: Path) -> None:
    pages = [open_page(server.base_url + "/") for _ in range(2)]
    for page in pages:
        expect_live(page)
    # Once live, the history is in: loadRecent finishes before the websocket opens.
    counts = [page.locator(CARDS).count() for page in pages]
    uploader = pages[0]

    uploader.set_input_files("#image", astronaut_file)

    row = uploader.locator("#uploads li")
    expect(row).to_have_count(1)
    expect(row).to_have_class(re.compile(r"\bdone\b"), timeout=UPLOAD_MS)
    expect(row.locator(".upload-name")).to_have_text("astronaut.jpg")
    expect(row.locator(".upload-status")).to_have_text("1 face found")
    for page, count in zip(pages, counts, strict=True):
        expect(page.locator(CARDS)).to_have_count(count + 1, timeout=LIVE_MS)
        expect(page.locator(CARDS).first).to_be_visible(timeout=LIVE_MS)
    # Newest first: the new card is on top of both pages, and it is the same detection.
    ids = [page.locator(CARDS).first.get_attribute("data-id") for page in pages]
    assert ids[0]
    assert ids[0] == ids[1]
    expect(pages[1].locator(CARDS).first.locator(".face-count")).to_have_text("1 face")


def test_a_detection_made_before_the_page_opened_is_shown_once(
    open_page: OpenPage, server: Server, http: requests.Session, astronaut_file: Path
) -> None:
    detection = upload(http, server, astronaut_file)
    page = open_page()

    # The catch-up after the websocket opens is the second chance to show it: wait for it to be done.
    with page.expect_response(is_catch_up) as catch_up:
        page.goto(server.base_url + "/")
    expect_live(page)

    assert catch_up.value.ok
    expect(card_of(page, detection)).to_have_count(1)
    expect(card_of(page, detection)).to_be_visible()
    expect(page.locator("#feed-empty")).to_be_hidden()
    ids = [card.get_attribute("data-id") for card in page.locator(CARDS).all()]
    assert len(ids) == len(set(ids)), ids


def test_the_detail_view_outlines_each_face(
    open_page: OpenPage, server: Server, http: requests.Session, two_faces_file: Path
) -> None:
    detection = upload(http, server, two_faces_file)
    assert detection["face_count"] == 2
    page = open_page(server.base_url + "/")
    expect_live(page)

    card_of(page, detection).locator(".card-open").click()

    dialog = page.locator("#detail")
    expect(dialog).to_have_js_property("open", True)
    expect(dialog).to_be_visible()
    boxes = page.locator("#detail-overlay .face-box")
    expect(boxes).to_have_count(2)
    expect(page.locator("#detail-faces li")).to_have_count(2)
    expect(page.locator("#detail-faces li").first).to_contain_text(percent(detection["faces"][0]["confidence"]))
    for selector in ("#detail-original", "#detail-annotated"):
        expect(page.locator(selector)).to_have_js_property("naturalWidth", detection["width"], timeout=10_000)

    # The outline sits on the face: its box, scaled to the image as displayed.
    image = page.locator("#detail-original").bounding_box()
    outline = boxes.first.bounding_box()
    assert image
    assert outline
    scale = image["width"] / detection["width"]
    face = detection["faces"][0]["box"]
    assert outline["x"] == pytest.approx(image["x"] + face["x"] * scale, abs=2)
    assert outline["y"] == pytest.approx(image["y"] + face["y"] * scale, abs=2)
    assert outline["width"] == pytest.approx(face["width"] * scale, abs=2)

    label = boxes.first.locator(".face-label")
    expect(label).to_be_hidden()
    boxes.first.hover()
    expect(label).to_be_visible()
    expect(label).to_have_text(f"#1 {percent(detection['faces'][0]['confidence'])}")
    screenshot(page, "detail", full_page=False)

    page.keyboard.press("Escape")

    expect(dialog).to_have_js_property("open", False)
    expect(dialog).to_be_hidden()


def test_a_page_reconnects_and_catches_up_after_a_server_restart(
    open_page: OpenPage, console: Console, restartable: Restartable, http: requests.Session, astronaut_file: Path
) -> None:
    # While the server is down Chromium logs each refused websocket: that is this test's doing.
    console.tolerate(r"WebSocket connection to '.*/faces' failed")
    with restartable.run() as server:
        # A card before the outage, so that catching up asks for what came after it.
        before = upload(http, server, astronaut_file)
        page = open_page(server.base_url + "/")
        expect_live(page)
        expect(card_of(page, before)).to_have_count(1)

    expect(page.locator("#connection")).to_have_attribute("data-state", re.compile(r"^(reconnecting|offline)$"))

    with restartable.run() as server:
        # Straight away: likely made before the page's next retry, so only catching up can show it.
        with page.expect_response(is_catch_up, timeout=RECONNECT_MS) as catch_up:
            during = upload(http, server, astronaut_file)
        expect_live(page)

        assert catch_up.value.ok
        expect(card_of(page, during)).to_have_count(1)
        expect(card_of(page, during)).to_be_visible()
        expect(card_of(page, before)).to_have_count(1)
        expect(page.locator(CARDS)).to_have_count(2)
        expect(page.locator(CARDS).first).to_have_attribute("data-id", during["id"])


def test_a_file_that_is_not_an_image_shows_the_servers_error(
    open_page: OpenPage, console: Console, server: Server, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Not a photo, only words.\n" * 20)
    # Chromium logs every 4xx answer to a request; the refusal is what this test asks for.
    console.tolerate(r"status of 415 \(Unsupported Media Type\) \(at http://[^ ]+/image\)")
    page = open_page(server.base_url + "/")
    expect_live(page)
    count = page.locator(CARDS).count()

    page.set_input_files("#image", notes)

    row = page.locator("#uploads li")
    expect(row).to_have_class(re.compile(r"\bfailed\b"), timeout=UPLOAD_MS)
    expect(row.locator(".upload-name")).to_have_text("notes.txt")
    expect(row.locator(".upload-status")).to_contain_text("not an image in a supported format")
    expect(page.locator(CARDS)).to_have_count(count)


def test_several_files_upload_one_after_the_other(
    open_page: OpenPage, server: Server, astronaut_file: Path, two_faces_file: Path
) -> None:
    page = open_page(server.base_url + "/")
    expect_live(page)
    count = page.locator(CARDS).count()

    page.set_input_files("#image", [astronaut_file, two_faces_file])

    rows = page.locator("#uploads li")
    expect(rows).to_have_count(2)
    expect(page.locator("#uploads li.done")).to_have_count(2, timeout=UPLOAD_MS)
    expect(rows.filter(has_text="astronaut.jpg").locator(".upload-status")).to_have_text("1 face found")
    expect(rows.filter(has_text="two-faces.jpg").locator(".upload-status")).to_have_text("2 faces found")
    expect(page.locator(CARDS)).to_have_count(count + 2, timeout=LIVE_MS)
    all_images_loaded(page, f"{CARDS} img")
    screenshot(page, "live-desktop")


def test_in_queue_mode_uploads_finish_on_the_page_or_say_why_they_failed(
    open_page: OpenPage, tmp_path: Path, astronaut_file: Path, astronaut_jpeg: bytes
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(astronaut_jpeg[:5000])  # accepted (202), then fails in the worker
    with (
        queue_configuration(tmp_path) as configuration,
        running_server(tmp_path, configuration) as server,
        running_worker(server),
    ):
        uploader, watcher = open_page(server.base_url + "/"), open_page(server.base_url + "/")
        for page in (uploader, watcher):
            expect_live(page)

        uploader.set_input_files("#image", [astronaut_file, truncated])

        rows = uploader.locator("#uploads li")
        expect(uploader.locator("#uploads li.done")).to_have_count(1, timeout=UPLOAD_MS)
        expect(uploader.locator("#uploads li.failed")).to_have_count(1, timeout=UPLOAD_MS)
        expect(rows.filter(has_text="astronaut.jpg").locator(".upload-status")).to_have_text("1 face found")
        expect(rows.filter(has_text="truncated.jpg").locator(".upload-status")).to_contain_text("truncated")
        for page in (uploader, watcher):  # a card for the detection that is done, none for the failed one
            expect(page.locator(CARDS)).to_have_count(1, timeout=LIVE_MS)
            expect(page.locator(CARDS).first.locator(".face-count")).to_have_text("1 face")
            page.close()  # before its server stops, which the page would try to reconnect to


def test_the_admin_lists_and_shows_detections_with_their_images(
    open_page: OpenPage, console: Console, server: Server, a_few_detections: list[dict]
) -> None:
    page = open_page(server.base_url + "/admin/login/?next=/admin/detection/detection/")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")

    expect(page).to_have_url(re.compile(r"/admin/detection/detection/$"))
    thumbnails = page.locator("#result_list tbody img")
    expect(thumbnails.first).to_be_visible()
    assert thumbnails.count() >= len(a_few_detections)
    all_images_loaded(page, "#result_list tbody img")
    screenshot(page, "admin-list")

    two_faces = a_few_detections[1]
    page.locator(f'#result_list img[alt="Detection {two_faces["id"]}"]').click()

    expect(page).to_have_url(re.compile(rf"/admin/detection/detection/{two_faces['id']}/"))
    images = page.locator(".field-images img")
    expect(images).to_have_count(2)
    all_images_loaded(page, ".field-images img")
    faces = page.locator(".field-faces_table table")
    expect(faces).to_be_visible()
    expect(faces.locator("tbody tr")).to_have_count(two_faces["face_count"])
    screenshot(page, "admin-detail")


def test_the_page_fits_a_phone(open_page: OpenPage, server: Server, a_few_detections: list[dict]) -> None:
    page = open_page(server.base_url + "/", viewport=PHONE, is_mobile=True, has_touch=True)
    expect_live(page)

    expect(page.locator("#drop-zone")).to_be_visible()
    expect(page.locator(CARDS).first).to_be_visible()
    all_images_loaded(page, f"{CARDS} img")
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "live-phone")

    # A click, not a tap: Chromium would paint the tap highlight over the dialog in the screenshot.
    page.locator(CARDS).first.locator(".card-open").click()
    expect(page.locator("#detail")).to_be_visible()
    all_images_loaded(page, "#detail-original")
    assert page.evaluate("document.getElementById('detail').scrollWidth") <= PHONE["width"]
    screenshot(page, "detail-phone", full_page=False)


def test_a_card_opens_from_the_keyboard(open_page: OpenPage, server: Server, a_few_detections: list[dict]) -> None:
    page = open_page(server.base_url + "/")
    expect_live(page)
    expect(page.locator(CARDS).first).to_be_visible()

    # Tab through the upload controls to the first card; a bound, in case focus never gets there.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('card-open')"):
            break
    else:
        pytest.fail("Tab never reached a card's open button", pytrace=False)
    opened = page.evaluate("document.activeElement.closest('li.card').dataset.id")

    page.keyboard.press("Enter")

    expect(page.locator("#detail")).to_have_js_property("open", True)
    expect(page.locator("#detail-original")).to_have_attribute("src", re.compile(re.escape(opened)))


def test_the_api_docs_form_starts_from_the_defaults_and_finds_the_astronauts_face(
    open_page: OpenPage, server: Server, astronaut_file: Path
) -> None:
    page = open_page(server.base_url + "/api/docs/")
    upload_operation = page.locator("#operations-image-detections_create")
    upload_operation.locator(".opblock-summary").click()
    upload_operation.get_by_role("button", name="Try it out").click()
    form = upload_operation.locator(".opblock-section-request-body")

    def field(name: str, control: str = "input") -> Locator:
        return form.locator(f'tr[data-property-name="{name}"] {control}').first

    # The server's defaults (make run's settings), not samples built from each option's limits.
    expect(field("min_confidence")).to_have_value("0.7")
    expect(field("profile", "select")).to_have_value("balanced")
    expect(field("min_face_size")).to_have_value("0")
    expect(field("max_faces")).to_have_value("")
    expect(field("annotate", "select")).to_have_value("box")
    form.scroll_into_view_if_needed()
    screenshot(page, "api-docs-form", full_page=False)

    field("image", 'input[type="file"]').set_input_files(astronaut_file)
    upload_operation.get_by_role("button", name="Execute").click()
    answer = upload_operation.locator(".live-responses-table .response-col_description pre").first
    expect(answer).to_contain_text('"status": "done"', timeout=UPLOAD_MS)

    body = json.loads(answer.inner_text())
    assert body["face_count"] == 1
    assert overlap(body["faces"][0]["box"], ASTRONAUT_FACE) > 0.5


def log_in(page: Page, base_url: str) -> None:
    page.goto(base_url + "/admin/login/?next=/")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")


def test_with_keys_required_for_reading_the_staff_page_still_lives(
    open_page: OpenPage, tmp_path: Path, http: requests.Session, astronaut_file: Path
) -> None:
    key = "a-key-for-the-camera-script"
    protected = {**SUPERUSER, "API_KEYS": key, "API_KEYS_REQUIRED_FOR_READ": "true"}
    with (
        embedded_configuration(tmp_path) as configuration,
        running_server(tmp_path, {**configuration, **protected}) as server,
    ):
        page = open_page()
        log_in(page, server.base_url)
        expect(page).to_have_url(server.base_url + "/")
        expect_live(page)  # the websocket was let in on the staff session

        with astronaut_file.open("rb") as image:
            response = http.post(
                server.base_url + "/image", files={"image": image}, headers={"X-API-Key": key}, timeout=30
            )
        assert response.status_code == 201, response.text

        expect(card_of(page, response.json())).to_be_visible(timeout=LIVE_MS)
        page.close()  # before its server stops, which the page would try to reconnect to
