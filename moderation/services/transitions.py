"""The upload state machine. Every status change goes through `upload_transition`, which refuses a move the table
does not list and appends it, with its reason and actor, to the upload's status history.

States only move forward through the pipeline, with three explicit exceptions listed in the table: a publish the
broker refused goes back to `received` (the sweeper publishes it again), a redelivered fetch task fetches again, and an
auto-tagged upload goes back to review when a confirmed fake or a re-score contradicts its tag.
"""

from __future__ import annotations

import logging

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
    S.REVIEWED: frozenset(),
    S.FAILED: frozenset(),
}


class IllegalTransition(ApplicationError):
    def __init__(self, upload: Upload, to: str) -> None:
        super().__init__(
            f"upload {upload.pk} cannot move from {upload.status or 'new'} to {to}",
            code="illegal_transition",
            status=409,
            extra={"from": upload.status or None, "to": to},
        )


def upload_can_move(upload: Upload, to: str) -> bool:
    """Whether the table allows `upload` (a new one has no history yet) to move to status `to`."""
    return to in ALLOWED_TRANSITIONS[upload.status if upload.status_history else None]


def upload_transition(*, upload: Upload, to: str, reason: str, acting_user: Actor) -> None:
    """Move `upload` to status `to` in memory (the caller saves it with its other changes, in its transaction).

    Raises IllegalTransition for a move the table does not allow; `reason` and the actor (a user, or the stage or job
    that moved it: `moderation.services.actors`) are recorded in the status history beside the time.
    """
    if not upload_can_move(upload, to):
        raise IllegalTransition(upload, to)
    actor = actor_name(acting_user)
    upload.status = to
    upload.status_history = [
        *upload.status_history,
        {"status": to, "at": timezone.now().isoformat(), "reason": reason, "actor": actor},
    ]


TERMINAL_STATUSES = {UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW, UploadStatus.REVIEWED, UploadStatus.FAILED}


def upload_fail(*, upload: Upload, reason: str, acting_user: Actor) -> None:
    if not upload_can_move(upload, UploadStatus.FAILED):
        # A late failure (fetch retries running out) of an upload a duplicate delivery already took further.
        logger.info("upload %s is %s; not failing it: %s", upload.id, upload.status, reason)
        return
    upload_transition(upload=upload, to=UploadStatus.FAILED, reason=reason[:500], acting_user=acting_user)
    upload.failure_reason = reason[:2000]
    upload.save(update_fields=["status", "status_history", "failure_reason", "updated_at"])
    logger.info("upload %s failed: %s", upload.id, reason)
