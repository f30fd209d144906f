"""Reads of the core records for a platform: by its API token or its slug."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .models import Platform


@contextmanager
def read_snapshot(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Every query inside reads the database as of one moment.

    A lookup reads an upload's row and then its scans, tags and decisions in separate queries; at PostgreSQL's default
    isolation each sees what was committed when it ran, so a verdict committed in between appeared beside the status
    from before it. Here: one REPEATABLE READ transaction on PostgreSQL, one transaction (which reads one snapshot) on
    SQLite. Inside a transaction already open, that one decides.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def platform_for_token(*, token_hash: str) -> Platform | None:
    return Platform.objects.filter(api_token_hash=token_hash).first()


def platform_by_slug(*, slug: str) -> Platform | None:
    return Platform.objects.filter(slug=slug).first()
