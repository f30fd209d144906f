"""The fetch stage on bytes a webhook held: one read, findings written with the status change, the held copy gone."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fetching.models import PendingImage
from fetching.services import upload_fetch
from moderation.models import Upload, UploadStatus
from tests.conftest import held_upload, photo_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_media_root")]


def _held(platform, external_id: str = "held-1") -> Upload:
    return held_upload(platform, external_id, photo_bytes(7))


def test_held_bytes_are_stored_with_one_read_and_one_write(platform):
    upload = _held(platform)
    with CaptureQueriesContext(connection) as queries:
        assert upload_fetch(upload_id=upload.pk)
    selects = [sql for query in queries if (sql := query["sql"]).startswith("SELECT")]
    upload_reads = [sql for sql in selects if "moderation_upload" in sql]
    assert len(upload_reads) == 1, "the upload, its platform and its held bytes in one read"
    updates = [sql for query in queries if (sql := query["sql"]).startswith('UPDATE "moderation_upload"')]
    assert len(updates) == 2, "the start counted first; the findings go in the status change's own statement"
    stored = Upload.objects.get(pk=upload.pk)
    assert stored.status == UploadStatus.FETCHED and stored.fetch_attempts == 1
    assert stored.image.name and stored.image.read() == photo_bytes(7)
    assert stored.pdq_hash and stored.pdq_quality is not None and isinstance(stored.evidence, list)
    assert not PendingImage.objects.filter(upload_id=upload.pk).exists(), "the database keeps no second copy"


def test_a_redelivered_fetch_reads_the_stored_image_once_the_held_copy_is_gone(platform):
    upload = _held(platform)
    assert upload_fetch(upload_id=upload.pk)
    first = Upload.objects.get(pk=upload.pk)
    assert upload_fetch(upload_id=upload.pk), "a redelivered task fetches again (every stage is idempotent)"
    again = Upload.objects.get(pk=upload.pk)
    assert again.status == UploadStatus.FETCHED and again.fetch_attempts == 2
    assert (again.image.name, again.pdq_hash, again.evidence) == (first.image.name, first.pdq_hash, first.evidence)
