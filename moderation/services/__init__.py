"""Every write to the core records goes through these functions (`<entity>_<action>`, keyword-only arguments)."""

from .audit import audit_record
from .callbacks import callback_attempt, callback_enqueue, callback_redeliver
from .model_versions import (
    model_retrain,
    model_version_ensure_default,
    model_version_gate,
    model_version_promote,
    model_version_rollback,
    platform_calibrate,
    shadow_scores_record,
)
from .uploads import (
    PlatformCredentials,
    hash_token,
    platform_create,
    platform_token_rotate,
    platform_webhook_secret_retire_old,
    platform_webhook_secret_rotate,
    scan_heatmap_ensure,
    scan_heatmap_request,
    upload_create,
    upload_enqueue,
    upload_fail,
    upload_fetch,
    uploads_requeue_stalled,
    uploads_scan,
)

__all__ = [
    "PlatformCredentials",
    "audit_record",
    "callback_attempt",
    "callback_enqueue",
    "callback_redeliver",
    "hash_token",
    "model_retrain",
    "model_version_ensure_default",
    "model_version_gate",
    "model_version_promote",
    "model_version_rollback",
    "platform_calibrate",
    "platform_create",
    "platform_token_rotate",
    "platform_webhook_secret_retire_old",
    "platform_webhook_secret_rotate",
    "scan_heatmap_ensure",
    "scan_heatmap_request",
    "shadow_scores_record",
    "upload_create",
    "upload_enqueue",
    "upload_fail",
    "upload_fetch",
    "uploads_requeue_stalled",
    "uploads_scan",
]
