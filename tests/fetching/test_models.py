"""The held image bytes' column as PostgreSQL stores it."""

from __future__ import annotations

import pytest


@pytest.mark.services
@pytest.mark.django_db
def test_held_image_bytes_skip_the_compression_attempt():
    from django.db import connection

    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute"
            " WHERE attrelid = 'fetching_pendingimage'::regclass AND attname = 'data'"
        )
        assert cursor.fetchone() == ("e",), "EXTERNAL: stored out of line, never compressed"
