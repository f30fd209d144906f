"""Recording a detection batch: one locked read and one transaction for the whole batch, every verdict written."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fetching.services import upload_fetch
from moderation.models import Upload, UploadStatus
from scanning.models import Scan
from scanning.services import uploads_scan
from tests.conftest import held_upload, photo_bytes

pytestmark = pytest.mark.django_db


def _fetched(platform, count: int) -> list[Upload]:
    uploads = [held_upload(platform, f"batch-{index}", photo_bytes(index)) for index in range(count)]
    assert all(upload_fetch(upload_id=upload.pk) for upload in uploads)
    return uploads


def test_a_batch_is_recorded_under_one_locked_read(platform, coin_model):
    uploads = _fetched(platform, 4)
    with CaptureQueriesContext(connection) as queries:
        scans = uploads_scan(upload_ids=[upload.pk for upload in uploads])
    locking = [sql for query in queries if "FOR UPDATE" in (sql := query["sql"]) and 'FROM "moderation_upload"' in sql]
    assert len(locking) == 1, "the batch's uploads are locked in one read, not one each"
    assert 'FOR UPDATE OF "moderation_upload"' in locking[0], "the platform row is read, not locked"
    statements = [query["sql"] for query in queries]
    assert len([sql for sql in statements if sql.startswith('INSERT INTO "moderation_scan"')]) == 1, "scans: one"
    tag_statements = ('DELETE FROM "moderation_tag"', 'INSERT INTO "moderation_tag"')
    tag_writes = [sql for sql in statements if sql.startswith(tag_statements)]
    assert len(tag_writes) == 2, "the batch's automatic tags replaced in one DELETE and one INSERT"
    status_writes = [sql for sql in statements if sql.startswith('UPDATE "moderation_upload"')]
    assert len(status_writes) == 4, "scored and tagged in one statement per upload"
    assert len(scans) == 4 and Scan.objects.count() == 4
    for upload in Upload.objects.filter(pk__in=[upload.pk for upload in uploads]):
        # The coin model scores 0.5, in its review zone: every verdict, with its columns, is written.
        assert upload.status == UploadStatus.NEEDS_REVIEW
        assert upload.scan_verdict == "needs-review" and upload.scan_score == pytest.approx(0.5)
        assert upload.scan_model_version and upload.review_priority > 0
        assert [entry["status"] for entry in upload.status_history][-3:] == ["fetched", "scanned", "needs_review"]


def test_an_upload_that_moved_on_is_left_alone_and_the_rest_recorded(platform, coin_model):
    first, *rest = _fetched(platform, 3)
    scanned_first = uploads_scan(upload_ids=[first.pk])
    assert len(scanned_first) == 1
    # A duplicate delivery of the same batch: the upload already scored keeps its one scan.
    scans = uploads_scan(upload_ids=[first.pk, *(upload.pk for upload in rest)])
    assert {scan.upload_id for scan in scans} == {upload.pk for upload in rest}
    assert Scan.objects.filter(upload=first).count() == 1


def test_a_batch_calls_back_each_upload_with_its_own_payload_read_once(platform, coin_model):
    from callbacks.models import CallbackDelivery
    from moderation.models import Platform

    Platform.objects.filter(pk=platform.platform.pk).update(callback_url="https://platform.example/hooks")
    uploads = _fetched(platform, 3)
    with CaptureQueriesContext(connection) as queries:
        uploads_scan(upload_ids=[upload.pk for upload in uploads])
    deliveries = list(CallbackDelivery.objects.filter(event_type="upload.tagged"))
    assert sorted(delivery.payload["data"]["external_id"] for delivery in deliveries) == [
        "batch-0",
        "batch-1",
        "batch-2",
    ]
    for delivery in deliveries:
        data = delivery.payload["data"]
        assert data["upload_id"] == str(delivery.upload_id) and data["status"] == "needs_review"
        assert data["verdict"]["label"] == "needs-review" and data["tags"][0]["name"] == "needs-review"
    # The payloads are read for the batch together: one read of each relation, not one per upload.
    assert sum('FROM "compliance_appeal"' in query["sql"] for query in queries) == 1
