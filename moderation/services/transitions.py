"""The upload state machine. Every status change goes through `upload_transition`, which refuses a move the table
does not list and appends it, with its reason and actor, to the upload's status history.

States only move forward through the pipeline, with four explicit exceptions listed in the table: a publish the
broker refused goes back to `received` (the sweeper publishes it again), a redelivered fetch task fetches again, an
auto-tagged upload goes back to review when a confirmed fake or a re-score contradicts its tag, and a user's appeal
sends a decided upload back to review.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ..errors import ApplicationError
from ..models import Upload, UploadStatus
from .actors import Actor, actor_name

logger = logging.getLogger(__name__)

S = UploadStatus

ALLOWED_TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset({S.QUEUED, S.FAILED}),
    S.QUEUED: frozenset({S.FETCHED, S.FAILED, S.RECEIVED}),
    S.FETCHED: frozenset({S.FETCHED, S.SCANNED, S.FAILED}),
    S.SCANNED: frozenset({S.TAGGED, S.NEEDS_REVIEW, S.FAILED}),
    S.TAGGED: frozenset({S.NEEDS_REVIEW, S.REVIEWED}),
    S.NEEDS_REVIEW: frozenset({S.REVIEWED}),
    # An appeal against a decided upload sends it back to the review queue.
    S.REVIEWED: frozenset({S.NEEDS_REVIEW}),
    S.FAILED: frozenset(),
}


class IllegalTransition(ApplicationError):
    """A move the table refuses, or one from a state the upload has already left (`now`: where another process took
    it meanwhile)."""

    def __init__(self, upload: Upload, to: str, *, now: str | None = None, start: str | None = None) -> None:
        start = start or upload.status  # `start`: a later step's own, in `upload_transitions`
        detail = f"upload {upload.pk} cannot move from {start or 'new'} to {to}"
        if now is not None:
            detail += f": another process moved it to {now} meanwhile"
        super().__init__(
            detail,
            code="illegal_transition",
            status=409,
            extra={"from": start or None, "to": to, **({"now": now} if now is not None else {})},
        )


def upload_can_move(upload: Upload, to: str) -> bool:
    """Whether the table allows `upload` (a new one has no history yet) to move to status `to`."""
    return to in ALLOWED_TRANSITIONS[upload.status if upload.status_history else None]


def upload_transition(
    *, upload: Upload, to: str, reason: str, acting_user: Actor, fields: Mapping[str, Any] | None = None
) -> None:
    """Move `upload` to status `to`, with `reason` and the actor (a user, or the stage or job that moved it:
    `moderation.services.actors`) recorded in its status history beside the time.

    A new upload moves in memory (its caller inserts it). A stored one is written at once, and only if its row is
    still in the state this instance read: `UPDATE … WHERE status = <from>` locks the row until the caller's
    transaction ends, so two workers holding copies of one upload can never both move it out of the same state; the
    loser gets IllegalTransition, as does a move the table does not allow. `fields` are written in the same statement
    (those the new state's constraints require, e.g. a failure's reason); the caller saves any others itself.
    """
    upload_transitions(upload=upload, steps=[(to, reason)], acting_user=acting_user, fields=fields)


def upload_transitions(
    *,
    upload: Upload,
    steps: Sequence[tuple[str, str]],
    acting_user: Actor,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """`upload_transition` through several states, each (status, reason) checked against the table and recorded in
    the history, written as one statement (the detect stage's scored-then-tagged: an UPDATE fewer per upload)."""
    history = list(upload.status_history)
    status = upload.status if history else None
    for to, reason in steps:
        if to not in ALLOWED_TRANSITIONS[status]:
            raise IllegalTransition(upload, to, start=status)
        history.append(
            {"status": to, "at": timezone.now().isoformat(), "reason": reason, "actor": actor_name(acting_user)}
        )
        status = to
    fields = dict(fields or {})
    if not upload._state.adding:
        moved = Upload.objects.filter(pk=upload.pk, status=upload.status).update(
            status=status, status_history=history, updated_at=timezone.now(), **fields
        )
        if not moved:
            current = Upload.objects.filter(pk=upload.pk).values_list("status", flat=True).first()
            raise IllegalTransition(upload, steps[0][0], now=current)
    upload.status, upload.status_history = status, history
    for name, value in fields.items():
        setattr(upload, name, value)


TERMINAL_STATUSES = {UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW, UploadStatus.REVIEWED, UploadStatus.FAILED}


def upload_fail(*, upload: Upload, reason: str, acting_user: Actor) -> None:
    if not upload_can_move(upload, UploadStatus.FAILED):
        # A late failure (fetch retries running out) of an upload a duplicate delivery already took further.
        logger.info("upload %s is %s; not failing it: %s", upload.id, upload.status, reason)
        return
    try:
        upload_transition(
            upload=upload,
            to=UploadStatus.FAILED,
            reason=reason[:500],
            acting_user=acting_user,
            fields={"failure_reason": reason[:2000]},
        )
    except IllegalTransition as exc:  # another process took it further while this one failed
        logger.info("upload %s not failed: %s (%s)", upload.id, exc.message, reason)
        return
    logger.info("upload %s failed: %s", upload.id, reason)


def upload_starts_count(*, upload_ids: Sequence[Any], counter: str, statuses: Sequence[str]) -> None:
    """Count a start of a stage's work (`counter`: "fetch_attempts" or "scan_attempts") on those of these uploads
    still in `statuses`, committed before the work, so that a start whose worker crashes still counts. Callers run
    outside a transaction.

    On PostgreSQL this commit does not wait for its WAL flush (`synchronous_commit` off, for this transaction only):
    a count is lost only if the database server itself crashes within a fraction of a second, which costs one more
    start; waiting for the disk on every batch slowed the detect stage's drain by a fifth (`bench_ingest`)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        Upload.objects.filter(pk__in=upload_ids, status__in=statuses).update(**{counter: F(counter) + 1})
