from __future__ import annotations

from typing import Any

from ..models import AuditEvent, Platform


def audit_record(
    *, actor: Any, platform: Platform | None, action: str, obj: Any, data: dict[str, Any] | None = None
) -> AuditEvent:
    """One audit row; call it inside the transaction of the change it records."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        platform=platform,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk),
        data=data or {},
    )
