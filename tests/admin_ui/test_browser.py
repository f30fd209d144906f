"""The console in a real browser (Debian's headless Chromium driven by Playwright): log in, review three uploads
with the keyboard only, bulk-decide the rest, open the stats page. Screenshots land in test-artifacts/console/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from moderation.models import ReviewDecision, UploadStatus
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
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def test_review_with_the_keyboard_bulk_decide_and_stats(page, live_server, coin_model, platform):
    uploads = [scanned_upload(platform, f"photo-{index}") for index in range(5)]
    lead = get_user_model().objects.create_user("leo", password="correct horse battery")
    lead.groups.add(Group.objects.get(name="lead"))

    page.goto(f"{live_server.url}/console/")
    assert "/console/login/" in page.url
    page.fill("input[name=username]", "leo")
    page.fill("input[name=password]", "correct horse battery")
    page.screenshot(path=ARTIFACTS / "01-login.png")
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("table.queue tr.selected")
    page.screenshot(path=ARTIFACTS / "02-queue.png")

    # Keyboard only from here: open the selected row, look at the heatmap, decide three in a row.
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/console/uploads/{uploads[0].pk}/"))
    page.keyboard.press("h")
    page.wait_for_selector("#heatmap[src^='blob:']", state="visible")
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
    page.screenshot(path=ARTIFACTS / "07-stats.png", full_page=True)
