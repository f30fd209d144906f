from __future__ import annotations

from enum import StrEnum
from typing import Any

from ..models import AuditEvent, Platform
from .actors import Actor, SystemActor


class AuditAction(StrEnum):
    """Every action the audit log records; the stored value is the string."""

    CALLBACK_REDELIVERED = "callback.redelivered"
    CONSOLE_USER_CREATED = "console_user.created"
    CONSOLE_USER_RESET = "console_user.reset"
    HASH_BANK_ADDED = "hash_bank.added"
    HASH_BANK_IMPORTED = "hash_bank.imported"
    HASH_BANK_REMOVED = "hash_bank.removed"
    MODEL_GATE_FAILED = "model.gate_failed"
    MODEL_GATE_PASSED = "model.gate_passed"
    MODEL_PROMOTED = "model.promoted"
    MODEL_ROLLED_BACK = "model.rolled_back"
    MODEL_TRAINED = "model.trained"
    PLATFORM_CALIBRATED = "platform.calibrated"
    PLATFORM_CREATED = "platform.created"
    PLATFORM_THRESHOLDS_CHANGED = "platform.thresholds_changed"
    PLATFORM_TOKEN_ROTATED = "platform.token_rotated"  # noqa: S105 (an action name)
    PLATFORM_WEBHOOK_SECRET_RETIRED = "platform.webhook_secret_retired"  # noqa: S105
    PLATFORM_WEBHOOK_SECRET_ROTATED = "platform.webhook_secret_rotated"  # noqa: S105
    UPLOAD_APPEALED = "upload.appealed"
    UPLOAD_APPEAL_DECIDED = "upload.appeal_decided"
    UPLOAD_KNOWN_FAKE_MATCH = "upload.known_fake_match"
    UPLOAD_KNOWN_FAKE_MATCH_WITHDRAWN = "upload.known_fake_match_withdrawn"
    UPLOAD_RESCORE_CHANGED = "upload.rescore_changed"
    UPLOAD_REVIEW_SKIPPED = "upload.review_skipped"
    UPLOAD_REVIEWED = "upload.reviewed"


def audit_record(
    *, actor: Actor, platform: Platform | None, action: AuditAction, obj: Any, data: dict[str, Any] | None = None
) -> AuditEvent:
    """One audit row; call it inside the transaction of the change it records. `actor`: a user or a SystemActor."""
    if actor is None:
        raise TypeError("audit_record needs an actor: a user, or a moderation.services.actors.SystemActor")
    system = isinstance(actor, SystemActor)
    return AuditEvent.objects.create(
        actor=None if system else actor,
        system_actor=actor.name if system else "",
        platform=platform,
        action=str(AuditAction(action)),
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk),
        data=data or {},
    )
