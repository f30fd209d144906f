"""Console pages through Django's test client: roles, tenant scoping, claims, decisions, bulk, stats and audit."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from moderation.models import AuditEvent, ReviewDecision, UploadStatus
from moderation.services import console_user_set
from tests.conftest import scanned_upload

pytestmark = pytest.mark.django_db


def _login(client, name: str, role: str | None, *platforms):
    if role:
        user, _ = console_user_set(username=name, role=role, platforms=[c.platform for c in platforms])
    else:
        user = get_user_model().objects.create_user(name)
    client.force_login(user)
    return user


@pytest.fixture
def acme_moderator(client, platform):
    return _login(client, "mia", "moderator", platform)


def test_pages_need_a_login_and_a_role(client, db):
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    _login(client, "nobody", None)
    assert client.get("/console/").status_code == 403


def test_moderator_sees_only_assigned_platforms(client, coin_model, platform, other_platform, acme_moderator):
    mine = scanned_upload(platform, "acme-1")
    theirs = scanned_upload(other_platform, "globex-1")

    queue = client.get("/console/")
    assert queue.status_code == 200
    assert b"acme-1" in queue.content and b"globex-1" not in queue.content

    assert client.get(f"/console/uploads/{mine.pk}/").status_code == 200
    for path in ("", "image", "heatmap"):
        assert client.get(f"/console/uploads/{theirs.pk}/{path}").status_code == 404
    assert client.post(f"/console/uploads/{theirs.pk}/decide", {"label": "real"}).status_code == 404
    assert not ReviewDecision.objects.filter(upload=theirs).exists()


def test_moderators_cannot_bulk_decide_or_read_stats_and_audit(client, coin_model, platform, acme_moderator):
    upload = scanned_upload(platform, "acme-2")
    assert client.post("/console/uploads/bulk-decide", {"uploads": [upload.pk], "label": "real"}).status_code == 403
    assert client.get("/console/stats/").status_code == 403
    assert client.get("/console/audit/").status_code == 403
    assert client.post("/console/platforms/acme/thresholds", {"review_margin": 0.2}).status_code == 403
    assert not ReviewDecision.objects.exists()


def test_item_page_shows_the_evidence_and_claims_the_upload(client, coin_model, platform, acme_moderator):
    upload = scanned_upload(platform, "acme-3")
    page = client.get(f"/console/uploads/{upload.pk}/")
    html = page.content.decode()
    assert "needs-review" in html and "0.500" in html and "tiny-test_efficientnet@1" in html
    assert upload.review_claim.reviewer == acme_moderator  # opening it claimed it

    image = client.get(f"/console/uploads/{upload.pk}/image")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert image["X-Content-Type-Options"] == "nosniff"
    heatmap = client.get(f"/console/uploads/{upload.pk}/heatmap")  # stored at scan time for needs-review ones
    assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"


def test_heatmap_of_a_likely_real_upload_is_made_on_demand(client, coin_model, platform, acme_moderator):
    platform.platform.ai_threshold = 0.7  # the coin model's 0.5 is now "likely-real": no heatmap stored
    platform.platform.save()
    upload = scanned_upload(platform, "acme-real")
    assert upload.scan_verdict == "likely-real"
    assert client.get(f"/console/uploads/{upload.pk}/heatmap").status_code == 202  # queued (run eagerly here)
    heatmap = client.get(f"/console/uploads/{upload.pk}/heatmap")
    assert heatmap.status_code == 200 and heatmap.getvalue().startswith(b"\x89PNG")


def test_second_moderator_cannot_decide_a_claimed_upload(client, coin_model, platform, acme_moderator):
    upload = scanned_upload(platform, "acme-4")
    client.get(f"/console/uploads/{upload.pk}/")  # mia claims it

    from django.test import Client

    other = Client()
    _login(other, "max", "moderator", platform)
    page = other.get(f"/console/uploads/{upload.pk}/")
    assert b"mia is reviewing this upload" in page.content
    assert b'id="decision"' not in page.content
    response = other.post(f"/console/uploads/{upload.pk}/decide", {"label": "real"}, follow=True)
    assert b"mia is reviewing this upload" in response.content
    assert not ReviewDecision.objects.exists()


def test_decision_moves_on_to_the_next_upload_in_the_queue(client, coin_model, platform, acme_moderator):
    first, second = scanned_upload(platform, "acme-5"), scanned_upload(platform, "acme-6")
    response = client.post(f"/console/uploads/{first.pk}/decide", {"label": "ai-generated", "note": "hands"})
    assert response.status_code == 302 and response["Location"] == f"/console/uploads/{second.pk}/"
    first.refresh_from_db()
    assert first.status == UploadStatus.REVIEWED
    assert ReviewDecision.objects.get(upload=first).note == "hands"
    # The queue no longer lists it; after the last one the console returns to the queue.
    assert b">acme-5<" not in client.get("/console/").content
    last = client.post(f"/console/uploads/{second.pk}/decide", {"label": "real"})
    assert last["Location"] == "/console/"


def test_lead_bulk_decides_and_sees_what_was_skipped(client, coin_model, platform, other_platform):
    uploads = [scanned_upload(platform, f"acme-b{index}") for index in range(3)]
    uploads.append(scanned_upload(other_platform, "globex-b"))
    _login(client, "leo", "lead")
    response = client.post(
        "/console/uploads/bulk-decide",
        {"uploads": [u.pk for u in uploads] + ["not-a-uuid"], "label": "ai-generated", "note": "same generator"},
        follow=True,
    )
    assert b"Decided 4 as ai-generated" in response.content
    assert ReviewDecision.objects.filter(note="same generator").count() == 4
    assert AuditEvent.objects.filter(action="upload.reviewed").count() == 4


def test_queue_filters_and_keyset_pages(client, coin_model, platform, settings):
    from admin_ui import views

    settings_page_size, views.PAGE_SIZE = views.PAGE_SIZE, 2
    try:
        ids = [scanned_upload(platform, f"page-{index}").external_id for index in range(5)]
        _login(client, "leo", "lead")
        seen, url = [], "/console/"
        while url:
            page = client.get(url)
            seen += [external_id for external_id in ids if f">{external_id}<".encode() in page.content]
            url = page.context["next_page"]
        assert seen == ids  # oldest first at equal priority, every upload exactly once
        assert client.get("/console/?verdict=ai-generated").context["total"] == 0
        assert client.get("/console/?verdict=needs-review&score_min=0.4&score_max=0.6").context["total"] == 5
        assert client.get("/console/?escalated=true").context["total"] == 0
        bad = client.get("/console/?score_min=2")
        assert bad.status_code == 200 and bad.context["total"] == 5 and "score_min" in bad.context["form"].errors
    finally:
        views.PAGE_SIZE = settings_page_size


def test_stats_and_audit_pages_for_a_lead(client, coin_model, platform):
    upload = scanned_upload(platform, "acme-s")
    lead = _login(client, "leo", "lead")
    client.post(f"/console/uploads/{upload.pk}/decide", {"label": "real"})
    client.post("/console/platforms/acme/thresholds", {"ai_threshold": "0.7", "review_margin": "0.05"})

    stats = client.get("/console/stats/")
    assert stats.status_code == 200
    assert b"<svg" in stats.content and b"Uploads per day" in stats.content
    assert stats.context["stats"].reviewed == 1

    platform.platform.refresh_from_db()
    assert (platform.platform.ai_threshold, platform.platform.review_margin) == (0.7, 0.05)
    audit = client.get("/console/audit/").content.decode()
    assert "platform.thresholds_changed" in audit and "upload.reviewed" in audit and lead.username in audit
    assert "&#x27;review_margin&#x27;: 0.1" in audit  # the value before the change


def test_console_user_command_creates_a_moderator_who_can_log_in(client, platform):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("console_user", "ann", "--role", "moderator", "--platform", "acme", stdout=out)
    password = out.getvalue().split("password:")[1].strip()
    response = client.post("/console/login/", {"username": "ann", "password": password})
    assert response.status_code == 302
    assert client.get("/console/").status_code == 200
    assert client.get("/console/stats/").status_code == 403
    assert list(get_user_model().objects.get(username="ann").moderated_platforms.all()) == [platform.platform]


def test_queue_paging_ignores_uploads_the_user_may_not_see(
    client, coin_model, platform, other_platform, acme_moderator
):
    scanned_upload(platform, "acme-p")
    theirs = scanned_upload(other_platform, "globex-p")
    page = client.get(f"/console/?after={theirs.pk}")
    assert page.context["first_page"] is None and b">acme-p<" in page.content


def test_logging_in_lands_on_the_queue(client, platform):
    get_user_model().objects.create_user("ann", password="pw").groups.add(Group.objects.get(name="moderator"))
    response = client.post("/console/login/", {"username": "ann", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/console/"
