"""Console pages through Django's test client: roles, tenant scoping, claims, decisions, bulk, stats and audit."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from PIL import Image, PngImagePlugin

from moderation.models import AuditEvent, UploadStatus
from reviews.models import ReviewDecision
from reviews.services import console_user_set
from tests.conftest import REPO_ROOT, TEST_ACTOR, scanned_upload
from tests.images import encode, natural_photo

pytestmark = pytest.mark.django_db


def _login(client, name: str, role: str | None, *platforms):
    if role:
        user, _ = console_user_set(
            username=name, role=role, platforms=[c.platform for c in platforms], acting_user=TEST_ACTOR
        )
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
    assert b"Decided 4 as AI-generated" in response.content
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
    # A paging cursor that is not a usable id shows the first page, never a 500.
    for cursor in ("²", "9" * 40, "-1", "x"):
        page = client.get("/console/audit/", {"before": cursor})
        assert page.status_code == 200 and "upload.reviewed" in page.content.decode(), cursor


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


def test_the_admin_role_opens_the_django_admin_and_a_lead_does_not(client, platform):
    for username, role, status in (("ada", "admin", 200), ("leo", "lead", 302)):
        client.logout()
        _login(client, username, role)
        for page in ("/admin/callbacks/callbackdelivery/", "/admin/registry/modelversion/"):
            assert client.get(page).status_code == status, (role, page)


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


# --- issue #14: the reviewer's findings and the review tools ------------------------------------------------------


def _confirmed_fake_and_copy(client, platform):
    """A fake a lead confirmed (banked), and a later re-encoded copy of it that the bank catches; the client is
    logged in as that lead."""
    from reviews.services import review_decide
    from tests.conftest import photo_bytes

    lead, _ = console_user_set(username="leo", role="lead", platforms=[], acting_user=TEST_ACTOR)
    original = scanned_upload(platform, "banked-fake", image=photo_bytes(21))
    review_decide(upload=original, reviewer=lead, label="ai-generated")
    copy = scanned_upload(platform, "fake-copy", image=photo_bytes(21, quality=60))
    assert "known-fake-match" in dict(copy.tags.values_list("name", "source"))
    client.force_login(lead)
    return original, copy


def test_heatmap_has_no_source_until_asked_for(client, coin_model, platform, acme_moderator):
    upload = scanned_upload(platform, "acme-h")
    html = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    [heatmap] = re.findall(r'<img id="heatmap"[^>]*>', html)
    assert " hidden" in heatmap and " src=" not in heatmap  # nothing to show broken before it is loaded
    css = (REPO_ROOT / "admin_ui/static/admin_ui/console.css").read_text()
    assert "[hidden] { display: none !important; }" in css  # `hidden` wins over `.image-frame img{display:block}`


def test_long_hashes_and_metadata_wrap_instead_of_widening_the_page(client, coin_model, platform, acme_moderator):
    css = (REPO_ROOT / "admin_ui/static/admin_ui/console.css").read_text()
    assert "grid-template-columns: max-content minmax(0, 1fr)" in css and "overflow-wrap: anywhere" in css
    upload = scanned_upload(platform, "acme-long", caption="x" * 400)
    assert client.get(f"/console/uploads/{upload.pk}/").status_code == 200  # the browser test measures the width


def test_unsure_moves_on_and_keeps_the_skip_out_of_my_queue(client, coin_model, platform, acme_moderator):
    first, second = scanned_upload(platform, "skip-1"), scanned_upload(platform, "skip-2")

    response = client.post(f"/console/uploads/{first.pk}/decide", {"label": "unsure"})
    assert response["Location"] == f"/console/uploads/{second.pk}/"
    # Skipping the last one goes to the queue, which no longer starts with the upload just skipped.
    response = client.post(f"/console/uploads/{second.pk}/decide", {"label": "unsure"})
    assert response["Location"] == "/console/"
    queue = client.get("/console/")
    assert queue.context["total"] == 0 and queue.context["hidden_skips"] == 2
    assert b">skip-1<" not in queue.content and b"2 you skipped hidden" in queue.content
    shown = client.get("/console/?skipped=show")
    assert shown.context["total"] == 2 and b'class="skipped"' in shown.content
    # Opened again by hand, a skipped upload's "next" is never itself.
    assert client.get(f"/console/uploads/{first.pk}/").context["next_url"] is None
    assert ReviewDecision.objects.filter(label="unsure").count() == 2
    for upload in (first, second):
        upload.refresh_from_db()
        assert upload.status == UploadStatus.NEEDS_REVIEW  # still waiting for someone else

    from django.test import Client

    colleague = Client()
    _login(colleague, "max", "moderator", platform)
    assert colleague.get("/console/").context["total"] == 2  # skips are per moderator


def test_deciding_real_on_a_known_fake_match_asks_first_and_overrules_the_match(
    client, coin_model, platform, acme_moderator
):
    original, copy = _confirmed_fake_and_copy(client, platform)
    client.force_login(acme_moderator)

    page = client.get(f"/console/uploads/{copy.pk}/")
    html = page.content.decode()
    assert "This upload matches a confirmed fake" in html and 'name="overrule_known_fake"' in html
    assert page.context["compare"].original == original  # side by side with the banked fake
    assert f'id="matched-fake" src="/console/uploads/{original.pk}/image"' in html

    refused = client.post(f"/console/uploads/{copy.pk}/decide", {"label": "real"}, follow=True)
    assert b"matches a confirmed fake" in refused.content
    assert not ReviewDecision.objects.filter(upload=copy).exists()

    client.post(f"/console/uploads/{copy.pk}/decide", {"label": "real", "overrule_known_fake": "1"})
    copy.refresh_from_db()
    decision = ReviewDecision.objects.get(upload=copy)
    assert dict(copy.tags.values_list("name", "source")) == {"real": "reviewer"}  # no contradicting tag left
    [match] = [f for f in copy.evidence if f["kind"] == "known_fake_match"]
    assert match["detail"]["overruled_by_decision"] == decision.pk  # kept on record, overruled
    event = AuditEvent.objects.get(action="upload.reviewed", object_id=str(copy.pk))
    assert "known-fake-match" in event.data["from"]["tags"] and event.data["to"]["tags"] == ["real"]
    html = client.get(f"/console/uploads/{copy.pk}/").content.decode()
    assert "overruled</strong> by a reviewer" in html and "This upload matches a confirmed fake" not in html

    # Confirming it AI after all upholds the match again.
    client.post(f"/console/uploads/{copy.pk}/decide", {"label": "ai-generated"})
    copy.refresh_from_db()
    assert dict(copy.tags.values_list("name", "source")) == {
        "ai-generated": "reviewer",
        "known-fake-match": "provenance",
    }
    assert "overruled_by_decision" not in next(f for f in copy.evidence if f["kind"] == "known_fake_match")["detail"]


def test_bulk_real_leaves_known_fake_matches_for_their_own_page(client, coin_model, platform):
    _original, copy = _confirmed_fake_and_copy(client, platform)
    plain = scanned_upload(platform, "plain")
    response = client.post(
        "/console/uploads/bulk-decide", {"uploads": [copy.pk, plain.pk], "label": "real"}, follow=True
    )
    assert b"Decided 1 as real" in response.content and b"matches a confirmed fake" in response.content
    assert not ReviewDecision.objects.filter(upload=copy).exists()


def test_a_match_naming_only_its_bank_entry_is_still_shown_side_by_side(client, coin_model, platform):
    original, copy = _confirmed_fake_and_copy(client, platform)
    for finding in copy.evidence:
        if finding["kind"] == "known_fake_match":
            finding["detail"]["original_upload_id"] = None  # as evidence recorded before matches named it
    copy.save(update_fields=["evidence"])
    assert client.get(f"/console/uploads/{copy.pk}/").context["compare"].original == original


def test_a_shared_bank_match_never_shows_the_other_platforms_picture(client, coin_model, platform, other_platform):
    from reviews.services import review_decide
    from tests.conftest import photo_bytes

    for credentials in (platform, other_platform):
        credentials.platform.share_hashes = True
        credentials.platform.save()
    lead, _ = console_user_set(username="leo", role="lead", platforms=[], acting_user=TEST_ACTOR)
    original = scanned_upload(platform, "acme-fake", image=photo_bytes(22))
    review_decide(upload=original, reviewer=lead, label="ai-generated")
    copy = scanned_upload(other_platform, "globex-copy", image=photo_bytes(22, quality=60))
    _login(client, "gia", "moderator", other_platform)

    page = client.get(f"/console/uploads/{copy.pk}/")
    html = page.content.decode()
    assert page.context["compare"] is None and str(original.pk) not in html
    assert "This upload matches a confirmed fake" in html and "pictures are not shown here" in html


def test_a_provenance_verdict_names_its_evidence_not_a_score(client, coin_model, platform, acme_moderator):
    platform.platform.ai_threshold = 0.7  # the pixels alone would say likely-real
    platform.platform.save()
    upload = scanned_upload(platform, "a1111", image=_a1111_png())
    assert upload.scan_verdict == "ai-generated"

    for _ in range(2):  # before and after a reviewer's decision replaced the verdict's tag
        html = client.get(f"/console/uploads/{upload.pk}/").content.decode()
        assert "decided by provenance evidence" in html
        assert "generator metadata: AUTOMATIC1111" in html
        assert "<dt>pixel score</dt>" in html and "<dt>score</dt>" not in html
        client.post(f"/console/uploads/{upload.pk}/decide", {"label": "ai-generated"})

    pixels = scanned_upload(platform, "pixels-only")
    html = client.get(f"/console/uploads/{pixels.pk}/").content.decode()
    assert "<dt>score</dt>" in html and "decided by provenance" not in html


def test_a_known_fake_match_verdict_is_decided_by_the_match(client, coin_model, platform, acme_moderator):
    _original, copy = _confirmed_fake_and_copy(client, platform)
    client.force_login(acme_moderator)
    html = client.get(f"/console/uploads/{copy.pk}/").content.decode()
    assert "decided by provenance evidence" in html and "match with a confirmed fake:" in html


def test_xmp_text_is_shown_as_written_and_escaped_once(client, coin_model, platform, acme_moderator):
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        b' xmp:CreatorTool="&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"/></rdf:RDF></x:xmpmeta>'
    )
    upload = scanned_upload(platform, "xmp-tool", image=encode(natural_photo(320, 240, 23), "JPEG", xmp=xmp))
    assert any(f["value"].startswith("&lt;script&gt;") for f in upload.evidence)  # stored as the XML had it

    html = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html  # shows "<script>alert(1)</script> & co"
    assert "&amp;lt;" not in html and "<script>alert" not in html


def test_labels_read_ai_generated_everywhere(client, coin_model, platform):
    upload = scanned_upload(platform, "label-1")
    _login(client, "leo", "lead")
    queue = client.get("/console/").content.decode()
    assert '<option value="ai-generated">AI-generated</option>' in queue
    assert "Ai Generated" not in queue
    assert "Ai Generated" not in client.get("/console/?view=grid").content.decode()
    client.post(f"/console/uploads/{upload.pk}/decide", {"label": "ai-generated"})
    item = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert "<strong>AI-generated</strong>" in item and "Ai Generated" not in item


def test_queue_grid_shows_lazy_thumbnails_and_keeps_the_view(client, coin_model, platform, acme_moderator):
    upload = scanned_upload(platform, "grid-1")
    page = client.get("/console/?view=grid")
    html = page.content.decode()
    assert page.context["grid"] and 'class="grid"' in html
    assert f'src="/console/uploads/{upload.pk}/thumbnail" loading="lazy"' in html
    assert f'href="/console/uploads/{upload.pk}/?view=grid"' in html  # and back to the grid from the item
    assert client.get(f"/console/uploads/{upload.pk}/?view=grid").context["queue_url"] == "/console/?view=grid"
    assert 'class="queue"' in client.get("/console/").content.decode()


def test_thumbnails_are_small_cached_jpegs_within_the_users_platforms(
    client, coin_model, platform, other_platform, acme_moderator, monkeypatch
):
    from admin_ui import thumbnails

    mine = scanned_upload(platform, "thumb-1", image=encode(natural_photo(1200, 900, 24), "JPEG"))
    theirs = scanned_upload(other_platform, "thumb-2")
    made = []
    render = thumbnails._render
    monkeypatch.setattr(thumbnails, "_render", lambda upload: made.append(upload.pk) or render(upload))

    response = client.get(f"/console/uploads/{mine.pk}/thumbnail")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff" and "private" in response["Cache-Control"]
    assert Image.open(io.BytesIO(response.content)).size == (320, 240)
    assert client.get(f"/console/uploads/{mine.pk}/thumbnail").content == response.content
    assert made == [mine.pk]  # made once, then from the cache

    assert client.get(f"/console/uploads/{theirs.pk}/thumbnail").status_code == 404
    client.logout()
    assert client.get(f"/console/uploads/{mine.pk}/thumbnail").status_code == 302


def test_a_file_that_is_no_picture_gets_no_thumbnail(client, coin_model, platform, acme_moderator):
    broken = scanned_upload(platform, "not-a-picture", image=b"this is not an image at all")
    assert broken.status == UploadStatus.FAILED
    response = client.get(f"/console/uploads/{broken.pk}/thumbnail")
    assert response.status_code == 415 and response["Content-Type"] == "text/plain"


def test_item_page_offers_full_resolution(client, coin_model, platform, acme_moderator):
    upload = scanned_upload(platform, "zoom-1")
    html = client.get(f"/console/uploads/{upload.pk}/").content.decode()
    assert '<dialog id="zoom"' in html
    assert re.search(rf'<img id="original" src="/console/uploads/{upload.pk}/image"[^>]* data-zoom', html)


def test_failed_uploads_page_for_leads_filters_by_platform_and_pages_by_key(
    client, coin_model, platform, other_platform, monkeypatch
):
    from admin_ui import views

    monkeypatch.setattr(views, "FAILED_PAGE_SIZE", 2)
    failed = [scanned_upload(platform, f"bad-{index}", image=b"not a picture %d" % index) for index in range(3)]
    failed.append(scanned_upload(other_platform, "bad-globex", image=b"not a picture either"))
    scanned_upload(platform, "fine")
    _login(client, "leo", "lead")

    seen, url = [], "/console/failed/?platform=acme"
    while url:
        page = client.get(url if url.startswith("/") else f"/console/failed/{url}")
        assert page.status_code == 200
        seen += [upload.external_id for upload, _ in page.context["rows"]]
        url = page.context["older"]
    assert seen == ["bad-2", "bad-1", "bad-0"]  # newest first, each once, only acme's
    everything = client.get("/console/failed/").content.decode()
    assert "bad-globex" in everything and "image rejected: not a recognised image format" in everything
    assert ">fine<" not in everything


def test_failed_uploads_page_is_not_for_moderators(client, coin_model, platform, acme_moderator):
    scanned_upload(platform, "bad-m", image=b"not a picture")
    assert client.get("/console/failed/").status_code == 403
    assert b"Failed uploads" not in client.get("/console/").content
    client.logout()
    assert client.get("/console/failed/").status_code == 302


def _a1111_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a photo of a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 42")
    return encode(natural_photo(480, 360, 25), "PNG", pnginfo=info)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_item_page_reads_the_upload_as_of_one_moment(client, platform, acme_moderator, monkeypatch):
    """A statement committed by someone else after the page read the upload is not shown beside the upload as it
    was before: the claim is written first, then every read sees one snapshot."""
    import threading
    import uuid

    from django.db import connection
    from django.utils import timezone

    import admin_ui.views
    from compliance.models import StatementKind, StatementOfReasons
    from moderation.models import Upload

    upload = Upload.objects.create(
        platform=platform.platform, webhook_id=f"msg_{uuid.uuid4().hex}", external_id="acme-moment",
        source_url="https://cdn.example.com/acme-moment.jpg", status=UploadStatus.TAGGED,
    )  # fmt: skip
    read_upload = admin_ui.views.upload_for_review

    def commit_a_statement_elsewhere() -> None:
        StatementOfReasons.objects.create(
            upload=upload, platform=platform.platform, version=1, kind=StatementKind.AUTOMATIC, restricts=True,
            puid="elsewhere-1", reason_code="ai", decision_visibility="label", automated_decision="fully",
            automated_detection=True, decided_at=timezone.now(), fields={}, explanation="committed meanwhile",
        )  # fmt: skip
        connection.close()

    def read_then_someone_commits(**kwargs):
        found = read_upload(**kwargs)
        writer = threading.Thread(target=commit_a_statement_elsewhere)
        writer.start()
        writer.join()
        return found

    monkeypatch.setattr(admin_ui.views, "upload_for_review", read_then_someone_commits)
    page = client.get(f"/console/uploads/{upload.pk}/")
    assert page.status_code == 200
    assert StatementOfReasons.objects.filter(upload=upload).count() == 1  # it was committed...
    assert "committed meanwhile" not in page.content.decode()  # ...after the moment the page shows
    upload.refresh_from_db()
    assert upload.review_claim.reviewer == acme_moderator  # the claim, written before, is kept
    monkeypatch.undo()
    assert "committed meanwhile" in client.get(f"/console/uploads/{upload.pk}/").content.decode()
