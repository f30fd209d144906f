"""Moderator decisions through the services: review record, tags, audit, callback, claims, bulk and stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.models import CallbackDelivery
from moderation.models import AuditEvent, UploadStatus
from reviews.models import ReviewClaim, ReviewDecision
from reviews.selectors import QueueFilters, review_queue, review_stats
from reviews.services import ClaimConflict, console_user_set, review_claim, review_decide, reviews_decide_bulk
from tests.conftest import TEST_ACTOR, api_get, scanned_upload

pytestmark = pytest.mark.django_db


def _user(name: str, role: str, *platforms):
    user, _ = console_user_set(
        username=name, role=role, platforms=[credentials.platform for credentials in platforms], acting_user=TEST_ACTOR
    )
    return user


@pytest.fixture
def moderator(platform):
    return _user("mia", "moderator", platform)


@pytest.fixture
def lead(db):
    return _user("leo", "lead")


def _callbacks_on(credentials) -> None:
    """Set after scanning: the scan's own `upload.tagged` delivery would otherwise run (eagerly) in the setup."""
    credentials.platform.callback_url = "https://platform.example/hooks"
    credentials.platform.save()


def test_decision_writes_review_tags_status_audit_and_callback(
    coin_model, platform, moderator, django_capture_on_commit_callbacks
):
    upload = scanned_upload(platform, "borderline-1")
    _callbacks_on(platform)
    assert upload.status == UploadStatus.NEEDS_REVIEW
    assert upload.scan_verdict == "needs-review" and upload.scan_score == pytest.approx(0.5)
    deliveries_before = CallbackDelivery.objects.count()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        review_decide(upload=upload, reviewer=moderator, label="ai-generated", note="six fingers")

    upload.refresh_from_db()
    assert upload.status == UploadStatus.REVIEWED
    assert [h["status"] for h in upload.status_history][-2:] == ["needs_review", "reviewed"]
    assert list(upload.tags.values_list("name", "source")) == [("ai-generated", "reviewer")]
    decision = ReviewDecision.objects.get(upload=upload)
    assert (decision.reviewer, decision.label, decision.note) == (moderator, "ai-generated", "six fingers")
    event = AuditEvent.objects.get(action="upload.reviewed", object_id=str(upload.pk))
    assert event.actor == moderator
    assert event.data["from"] == {"status": "needs_review", "tags": ["needs-review"]}
    assert event.data["to"] == {"status": "reviewed", "tags": ["ai-generated"]}
    delivery = CallbackDelivery.objects.exclude(pk__lte=deliveries_before).get()
    assert delivery.event_type == "upload.reviewed"
    assert delivery.payload["data"]["review"]["label"] == "ai-generated"
    assert len(queued) == 2  # after commit: the callback delivery, and the retro scan for the banked hashes


def test_unsure_is_a_recorded_skip_that_changes_nothing_else(coin_model, platform, moderator):
    upload = scanned_upload(platform, "borderline-2")
    _callbacks_on(platform)
    deliveries_before = CallbackDelivery.objects.count()
    review_decide(upload=upload, reviewer=moderator, label="unsure")
    upload.refresh_from_db()
    assert upload.status == UploadStatus.NEEDS_REVIEW
    assert list(upload.tags.values_list("name", flat=True)) == ["needs-review"]
    assert ReviewDecision.objects.get(upload=upload).label == "unsure"
    assert AuditEvent.objects.filter(action="upload.review_skipped", object_id=str(upload.pk)).exists()
    assert CallbackDelivery.objects.count() == deliveries_before


def test_overturning_an_auto_tag_and_the_lookup_api_shows_the_review(client, coin_model, platform, lead):
    platform.platform.ai_threshold = 0.3  # the coin model's 0.5 is now confidently "ai-generated"
    platform.platform.save()
    upload = scanned_upload(platform, "auto-1")
    assert upload.status == UploadStatus.TAGGED and upload.scan_verdict == "ai-generated"

    review_decide(upload=upload, reviewer=lead, label="real")

    body = api_get(client, "/api/v1/uploads/auto-1", platform.api_token).json()
    assert body["status"] == "reviewed"
    assert body["tags"] == [{"name": "real", "confidence": None, "source": "reviewer"}]
    assert body["review"]["label"] == "real"
    assert body["verdict"]["label"] == "ai-generated"  # the machine's verdict stays on record


def test_a_claim_blocks_other_moderators_until_it_expires(coin_model, platform, moderator):
    other = _user("max", "moderator", platform)
    upload = scanned_upload(platform, "claimed-1")
    review_claim(upload=upload, reviewer=moderator)
    review_claim(upload=upload, reviewer=moderator)  # renewing your own claim is fine

    with pytest.raises(ClaimConflict) as conflict:
        review_claim(upload=upload, reviewer=other)
    assert conflict.value.status == 409 and "mia" in conflict.value.message
    with pytest.raises(ClaimConflict):
        review_decide(upload=upload, reviewer=other, label="real")
    assert not ReviewDecision.objects.exists()

    ReviewClaim.objects.filter(upload=upload).update(expires_at=timezone.now() - timedelta(seconds=1))
    review_decide(upload=upload, reviewer=other, label="real")
    assert ReviewDecision.objects.get().reviewer == other
    assert not ReviewClaim.objects.exists()  # a decision releases the claim


def test_bulk_decides_each_upload_and_skips_those_held_by_others(coin_model, platform, moderator, lead):
    uploads = [scanned_upload(platform, f"bulk-{index}") for index in range(4)]
    review_claim(upload=uploads[0], reviewer=moderator)

    outcome = reviews_decide_bulk(uploads=uploads, reviewer=lead, label="ai-generated")

    assert {u.pk for u in outcome.decided} == {u.pk for u in uploads[1:]}
    assert list(outcome.skipped) == [str(uploads[0].pk)]
    assert "mia" in outcome.skipped[str(uploads[0].pk)]
    assert ReviewDecision.objects.filter(label="ai-generated").count() == 3
    assert AuditEvent.objects.filter(action="upload.reviewed").count() == 3


def test_a_failed_upload_cannot_be_reviewed(coin_model, platform, moderator):
    from moderation.errors import ApplicationError

    upload = scanned_upload(platform, "broken-1", image=b"\xff\xd8 not a JPEG after all")
    assert upload.status == UploadStatus.FAILED
    with pytest.raises(ApplicationError, match="only scanned uploads"):
        review_decide(upload=upload, reviewer=moderator, label="real")


def test_queue_puts_platform_flagged_first_then_oldest(coin_model, platform, lead):
    first = scanned_upload(platform, "q-old")
    second = scanned_upload(platform, "q-new")
    flagged = scanned_upload(platform, "q-flagged", flagged=True)
    order = [u.external_id for u in review_queue(user=lead, filters=QueueFilters())]
    assert order == [flagged.external_id, first.external_id, second.external_id]
    assert flagged.review_priority > first.review_priority == second.review_priority


def test_stats_count_overturns_per_model_and_false_positives(coin_model, platform, lead):
    platform.platform.ai_threshold = 0.3
    platform.platform.save()
    tagged_ai = [scanned_upload(platform, f"s-{index}") for index in range(3)]
    review_decide(upload=tagged_ai[0], reviewer=lead, label="real")  # overturned: a false positive
    review_decide(upload=tagged_ai[1], reviewer=lead, label="ai-generated")  # confirmed

    stats = review_stats(user=lead)

    assert stats.scanned == 3 and stats.auto_tagged == 3 and stats.reviewed == 2
    assert stats.overturns_by_model == {"tiny-test_efficientnet@1": (2, 1)}
    assert (stats.real_reviewed, stats.real_flagged_ai) == (1, 1)
    assert stats.per_day[-1][1:] == (3, 3, 3, 0)


def test_claiming_and_deciding_lock_no_platform_or_user_row(coin_model, platform, moderator):
    """Only the upload and its claim are locked: a lock on the joined platform or user rows would make every
    moderator of a platform wait on the others' decisions."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    upload = scanned_upload(platform, "locks-1")
    with CaptureQueriesContext(connection) as queries:
        review_claim(upload=upload, reviewer=moderator)
        review_decide(upload=upload, reviewer=moderator, label="real")
    locks = [query["sql"] for query in queries if "FOR UPDATE" in query["sql"]]
    assert locks and all('FOR UPDATE OF "' in sql or " JOIN " not in sql for sql in locks), locks
