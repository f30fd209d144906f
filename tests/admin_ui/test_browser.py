"""The console in a real browser (Debian's headless Chromium driven by Playwright): log in, review three uploads
with the keyboard only, bulk-decide the rest, open the stats page; the item page's heatmap, zoom and width; the
queue's thumbnail grid. Screenshots land in test-artifacts/console/; with UPDATE_README_SCREENSHOTS=1 the ones the
README shows are written to docs/ too."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections

from moderation.models import UploadStatus
from reviews.models import ReviewDecision
from tests.conftest import REPO_ROOT, scanned_upload

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts")) / "console"
UPDATE_README = os.environ.get("UPDATE_README_SCREENSHOTS") == "1"
PASSWORD = "correct horse battery"


def _shot(page, name: str, *, readme: str | None = None, full_page: bool = False) -> None:
    """A screenshot in the test artifacts, and where `readme` names one, the README's copy when asked to update."""
    page.screenshot(path=ARTIFACTS / name, full_page=full_page)
    if readme and UPDATE_README:
        shutil.copyfile(ARTIFACTS / name, REPO_ROOT / "docs" / readme)


def _lead(name: str = "leo"):
    lead = get_user_model().objects.create_user(name, password=PASSWORD)
    lead.groups.add(Group.objects.get(name="lead"))
    return lead


def _log_in(page, live_server, username: str, path: str = "/console/") -> None:
    page.goto(f"{live_server.url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()


def _no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _display(page, selector: str) -> str:
    return page.eval_on_selector(selector, "element => getComputedStyle(element).display")


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        yield context.new_page()
        # While that loop runs, Django keeps this thread's connections per context, not per thread: the ones the test
        # opened are not the thread's usual ones, and left open they kept PostgreSQL from dropping the test database.
        connections.close_all()
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def test_review_with_the_keyboard_bulk_decide_and_stats(page, live_server, coin_model, platform):
    uploads = [scanned_upload(platform, f"photo-{index}") for index in range(5)]
    _lead()

    page.goto(f"{live_server.url}/console/")
    assert "/console/login/" in page.url
    page.fill("input[name=username]", "leo")
    page.fill("input[name=password]", PASSWORD)
    page.screenshot(path=ARTIFACTS / "01-login.png")
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("table.queue tr.selected")
    page.screenshot(path=ARTIFACTS / "02-queue.png")

    # Keyboard only from here: open the selected row, look at the heatmap, decide three in a row.
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/console/uploads/{uploads[0].pk}/"))
    page.keyboard.press("h")
    page.wait_for_selector("#heatmap[src^='blob:']", state="visible")
    assert _display(page, "#original") == "none"
    page.screenshot(path=ARTIFACTS / "03-item-heatmap.png")
    page.keyboard.press("?")
    assert page.is_visible("dialog#help")
    page.keyboard.press("Escape")
    for upload, key, following in ((uploads[0], "a", uploads[1]), (uploads[1], "r", uploads[2])):
        page.keyboard.press(key)
        page.wait_for_url(re.compile(rf"/console/uploads/{following.pk}/"))
    page.keyboard.press("n")
    page.keyboard.type("diffusion artefacts in the hair")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.wait_for_url(re.compile(rf"/console/uploads/{uploads[3].pk}/"))
    page.screenshot(path=ARTIFACTS / "04-after-three-decisions.png")

    labels = dict(ReviewDecision.objects.values_list("upload__external_id", "label"))
    assert labels == {"photo-0": "ai-generated", "photo-1": "real", "photo-2": "ai-generated"}
    assert ReviewDecision.objects.get(upload=uploads[2]).note == "diffusion artefacts in the hair"

    # Bulk: back to the queue, select the two left with x, decide them together.
    page.keyboard.press("q")
    page.wait_for_selector("table.queue tr.selected")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.inner_text("[data-selected-count]") == "2 selected"
    page.select_option("select[name=label]", "real")
    page.screenshot(path=ARTIFACTS / "05-bulk-selected.png")
    page.click("text=Decide selected")
    page.wait_for_selector("text=Decided 2 as real")
    page.screenshot(path=ARTIFACTS / "06-bulk-done.png")
    assert ReviewDecision.objects.filter(label="real").count() == 3
    assert {u.status for u in type(uploads[0]).objects.filter(platform=platform.platform)} == {UploadStatus.REVIEWED}

    page.click("text=Stats")
    page.wait_for_selector("figure.chart svg")
    assert "5" in page.inner_text(".tiles")
    _shot(page, "07-stats.png", readme="console-stats.png", full_page=True)


def test_item_page_heatmap_replaces_the_image_zooms_and_fits_1440(page, live_server, coin_model, platform):
    listing = "https://resale.example/listings/2026/12/vintage-denim-jacket-" + "0123456789abcdef" * 6
    upload = scanned_upload(platform, "wide-item", listing_url=listing)
    _lead()
    page.set_viewport_size({"width": 1440, "height": 900})
    _log_in(page, live_server, "leo", f"/console/uploads/{upload.pk}/")
    page.wait_for_function("document.getElementById('original').naturalWidth > 0")
    assert _no_horizontal_overflow(page)

    # Before `h`: the original only; the heatmap is not displayed at all (no broken-image icon beside it).
    assert _display(page, "#heatmap") == "none" and _display(page, "#original") != "none"
    before = page.eval_on_selector("#original", "img => img.getBoundingClientRect().toJSON()")
    page.keyboard.press("h")
    page.wait_for_selector("#heatmap[src^='blob:']", state="visible")
    assert _display(page, "#original") == "none"  # computed style: the heatmap replaces it, not beside it
    after = page.eval_on_selector("#heatmap", "img => img.getBoundingClientRect().toJSON()")
    assert all(abs(before[key] - after[key]) < 1.5 for key in ("x", "y", "width", "height"))
    assert _no_horizontal_overflow(page)
    _shot(page, "08-item-heatmap-1440.png", readme="console-item.png")
    page.keyboard.press("h")
    assert _display(page, "#heatmap") == "none" and _display(page, "#original") != "none"

    # Click to zoom: the picture at its own pixel size; Esc closes and the keys work again.
    page.click("#original")
    page.wait_for_selector("dialog#zoom[open] img")
    page.wait_for_function("document.querySelector('#zoom img').naturalWidth > 0")
    width, natural = page.eval_on_selector("#zoom img", "img => [img.getBoundingClientRect().width, img.naturalWidth]")
    assert natural == 480 and width == natural
    _shot(page, "09-item-zoom.png")
    page.keyboard.press("Escape")
    assert not page.is_visible("dialog#zoom")
    page.keyboard.press("z")
    page.wait_for_selector("dialog#zoom[open]")
    page.keyboard.press("Escape")


def test_known_fake_match_side_by_side_fits_1440(page, live_server, coin_model, platform):
    from reviews.services import review_decide
    from tests.conftest import photo_bytes

    lead = _lead()
    original = scanned_upload(platform, "banked-fake", image=photo_bytes(31))
    review_decide(upload=original, reviewer=lead, label="ai-generated")
    copy = scanned_upload(platform, "copy-of-a-fake", image=photo_bytes(31, quality=60))
    page.set_viewport_size({"width": 1440, "height": 900})
    _log_in(page, live_server, "leo", f"/console/uploads/{copy.pk}/")
    page.wait_for_function("['original', 'matched-fake'].every(id => document.getElementById(id).naturalWidth > 0)")
    assert page.is_visible("text=This upload matches a confirmed fake")
    assert _no_horizontal_overflow(page)
    _shot(page, "10-known-fake-side-by-side.png", readme="console-compare.png")

    page.keyboard.press("r")  # real without ticking the overrule: refused, nothing recorded
    page.wait_for_selector(".messages .error")
    assert not ReviewDecision.objects.filter(upload=copy).exists()


def test_queue_grid_shows_thumbnails_and_bulk_decides_by_keyboard(page, live_server, coin_model, platform):
    uploads = [scanned_upload(platform, f"tile-{index}") for index in range(12)]
    _lead()
    page.set_viewport_size({"width": 1440, "height": 900})
    _log_in(page, live_server, "leo")
    page.wait_for_selector("table.queue tr.selected")
    page.keyboard.press("g")
    page.wait_for_selector("ul.grid .card.selected")
    assert "view=grid" in page.url

    page.wait_for_function(
        "Array.from(document.querySelectorAll('.card img')).every(img => img.complete && img.naturalWidth > 0)"
    )
    lazy = page.eval_on_selector_all(".card img", "imgs => imgs.map(img => img.getAttribute('loading'))")
    assert lazy == ["lazy"] * len(uploads)
    assert _no_horizontal_overflow(page)

    columns = page.evaluate(
        "(() => { const cards = [...document.querySelectorAll('.card')];"
        " return cards.filter(card => card.offsetTop === cards[0].offsetTop).length; })()"
    )
    assert 1 < columns < len(uploads)
    page.keyboard.press("x")  # tile 0
    page.keyboard.press("ArrowDown")  # one row down: the tile below
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.keyboard.press("x")  # and unticked again
    page.keyboard.press("j")
    page.keyboard.press("x")
    ticked = [0, columns, columns + 2]
    assert page.inner_text("[data-selected-count]") == "3 selected"
    _shot(page, "11-grid-selected.png", readme="console-grid.png")

    page.keyboard.press("a")
    page.wait_for_selector("text=Decided 3 as AI-generated")
    assert "view=grid" in page.url and page.is_visible("ul.grid")
    decided = set(ReviewDecision.objects.filter(label="ai-generated").values_list("upload__external_id", flat=True))
    assert decided == {uploads[index].external_id for index in ticked}
    _shot(page, "12-grid-after-bulk.png")
