"""Reading a fetch batch: each upload with its platform and held bytes, in few queries, never too many bytes at once."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fetching import selectors
from fetching.selectors import uploads_for_fetch
from tests.conftest import held_upload, photo_bytes

pytestmark = pytest.mark.django_db


def _held(platform, count: int) -> list[str]:
    return [str(held_upload(platform, f"held-{n}", photo_bytes(n, size=(64, 48))).pk) for n in range(count)]


def test_a_batch_is_read_in_two_queries_in_the_order_given(platform):
    ids = _held(platform, 6)
    wanted = [ids[3], str(uuid.uuid4()), *ids[:3], *ids[4:]]
    with CaptureQueriesContext(connection) as queries:
        read = list(uploads_for_fetch(wanted))
        held = [bytes(upload.pending_image.data) for _, upload in read if upload is not None]
        platforms = {upload.platform.slug for _, upload in read if upload is not None}
    assert [upload_id for upload_id, _ in read] == wanted
    assert [upload is None for _, upload in read] == [False, True, False, False, False, False, False]
    assert len(queries) == 2, "the sizes, then every upload with its platform and bytes"
    assert held == [photo_bytes(n, size=(64, 48)) for n in (3, 0, 1, 2, 4, 5)] and platforms == {"acme"}


def test_held_bytes_are_read_no_more_than_the_budget_at_a_time(platform, monkeypatch):
    ids = _held(platform, 5)
    largest = max(len(photo_bytes(n, size=(64, 48))) for n in range(5))
    monkeypatch.setattr(selectors, "HELD_BYTES_PER_READ", 2 * largest)
    with CaptureQueriesContext(connection) as queries:
        read = [(upload_id, upload.pk) for upload_id, upload in uploads_for_fetch(ids)]
    assert [upload_id for upload_id, _ in read] == ids and all(str(pk) in ids for _, pk in read)
    data_reads = [sql for query in queries if "LENGTH" not in (sql := query["sql"]) and "fetching_pendingimage" in sql]
    assert len(data_reads) == 3, "two uploads' bytes at most per read: 2 + 2 + 1"


def test_one_upload_is_one_query(platform):
    [upload_id] = _held(platform, 1)
    with CaptureQueriesContext(connection) as queries:
        [(_, upload)] = uploads_for_fetch([upload_id])
        assert upload.pending_image.data and upload.platform.slug == "acme"
    assert len(queries) == 1
