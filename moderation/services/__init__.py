"""Writes to the core records every stage shares: platforms, the upload state machine, the audit log."""

from .actors import COMMAND_LINE, FETCHING, INTAKE, SCANNING, SCHEDULER, Actor, SystemActor
from .audit import AuditAction, audit_record
from .platforms import (
    PlatformCredentials,
    hash_token,
    platform_create,
    platform_token_rotate,
    platform_webhook_secret_retire_old,
    platform_webhook_secret_rotate,
)
from .transitions import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    IllegalTransition,
    upload_can_move,
    upload_fail,
    upload_starts_count,
    upload_transition,
    upload_transitions,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "COMMAND_LINE",
    "FETCHING",
    "INTAKE",
    "SCANNING",
    "SCHEDULER",
    "TERMINAL_STATUSES",
    "Actor",
    "AuditAction",
    "IllegalTransition",
    "PlatformCredentials",
    "SystemActor",
    "audit_record",
    "hash_token",
    "platform_create",
    "platform_token_rotate",
    "platform_webhook_secret_retire_old",
    "platform_webhook_secret_rotate",
    "upload_can_move",
    "upload_fail",
    "upload_starts_count",
    "upload_transition",
    "upload_transitions",
]
