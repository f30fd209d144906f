"""The appeal flow in a real browser: a signed `upload.appealed` webhook over HTTP, the moderator who took the
decision sees the four-eyes notice and cannot decide, a second moderator finds the appeal first in the queue and
reverses it. Screenshots land in test-artifacts/console/appeal-*.png."""

from __future__ import annotations

import json
import urllib.request

import pytest

from compliance.models import Appeal
from moderation.models import UploadStatus
from reviews.services import console_user_set, review_decide
from tests.admin_ui.test_browser import ARTIFACTS, page  # noqa: F401 (the browser page fixture)
from tests.conftest import TEST_ACTOR, scanned_upload
from transport.signatures import sign

pytestmark = [pytest.mark.browser, pytest.mark.compliance]


def _log_in(page, live_server, username: str, password: str) -> None:  # noqa: F811
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()


def test_appeal_flow_in_the_console(page, live_server, coin_model, platform):  # noqa: F811
    mia, mia_password = console_user_set(
        username="mia", role="moderator", platforms=[platform.platform], acting_user=TEST_ACTOR
    )
    _, noor_password = console_user_set(
        username="noor", role="moderator", platforms=[platform.platform], acting_user=TEST_ACTOR
    )
    upload = scanned_upload(platform, "listing-photo-7")
    for index in range(2):
        scanned_upload(platform, f"waiting-{index}")
    review_decide(upload=upload, reviewer=mia, label="ai-generated")

    body = json.dumps(
        {"type": "upload.appealed", "appeal": {"external_id": "listing-photo-7", "complaint": "My own photo."}}
    ).encode()
    request = urllib.request.Request(
        f"{live_server.url}/webhooks/acme/uploads",
        data=body,
        headers={"Content-Type": "application/json", **sign(body, secret=platform.webhook_secret, msg_id="msg_ap7")},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202

    _log_in(page, live_server, "mia", mia_password)
    page.goto(f"{live_server.url}/console/uploads/{upload.pk}/")
    assert page.locator(".four-eyes").is_visible() and page.locator("#decision").count() == 0
    page.screenshot(path=ARTIFACTS / "appeal-01-four-eyes.png", full_page=True)

    _log_in(page, live_server, "noor", noor_password)
    first = page.locator("tr[data-row] a").first  # the list view's first row's link
    assert first.inner_text() == "listing-photo-7", "the appeal leads the queue"
    assert page.locator(".badge.appeal").first.is_visible()
    page.screenshot(path=ARTIFACTS / "appeal-02-queue.png")
    first.click()
    page.wait_for_load_state()
    assert "My own photo." in page.locator(".appeal-panel").inner_text()
    page.screenshot(path=ARTIFACTS / "appeal-03-item.png", full_page=True)
    page.click("button[value=real]")
    page.wait_for_load_state()
    page.screenshot(path=ARTIFACTS / "appeal-04-after-reversal.png")

    appeal = Appeal.objects.get(upload=upload)
    upload.refresh_from_db()
    assert (appeal.status, appeal.decided_by) == ("reversed", "noor")
    assert upload.status == UploadStatus.REVIEWED and list(upload.tags.values_list("name", flat=True)) == ["real"]
    assert appeal.outcome_statement.kind == "appeal_reversed"

    _, lead_password = console_user_set(username="leo", role="lead", platforms=[], acting_user=TEST_ACTOR)
    _log_in(page, live_server, "leo", lead_password)
    page.click("text=Transparency")
    page.wait_for_load_state()
    tiles = page.locator(".tiles").inner_text()
    assert "1 appeals received · 1 decided · 1 reversed" in " ".join(tiles.split())
    page.screenshot(path=ARTIFACTS / "appeal-05-transparency-report.png", full_page=True)
