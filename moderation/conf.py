"""The apps' settings, namespaced in one dict (`settings.AI_MODERATION`) with defaults, read through one accessor.

A host project that installs the apps as a plugin sets only what it wants to change.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Folder with model.safetensors + card.json; None means the model shipped inside the `detector` package.
    "DETECTOR_CHECKPOINT": None,
    "DETECTOR_DEVICE": "auto",
    # CPU scoring runtime: "auto" (ONNX Runtime, the fastest measured), "onnxruntime" or "torch".
    "DETECTOR_CPU_RUNTIME": "auto",
    # Where ONNX exports of the models are cached between worker processes; None means ~/.cache/ai-moderation/onnx.
    "DETECTOR_ONNX_CACHE_DIR": None,
    "CALLBACK_MAX_ATTEMPTS": 8,
    "CALLBACK_TIMEOUT_SECONDS": 10.0,
    # A `pending` callback with no attempt for this long lost its message and is sent again (a retry waits 1.5 h at
    # most).
    "CALLBACK_STALLED_AFTER_SECONDS": 7200.0,
    "DETECTOR_MAX_BATCH_SIZE": 32,
    # A detection worker flushes a batch when it holds DETECTOR_MAX_BATCH_SIZE uploads or after this many seconds.
    "DETECTOR_BATCH_WAIT_SECONDS": 0.25,
    # Load and warm the models when a worker process starts (GPU workers) instead of on the first batch.
    "DETECTOR_WARM_UP": False,
    "MAX_IMAGE_BYTES": 25 * 1024 * 1024,
    # A base64 image of MAX_IMAGE_BYTES plus the JSON around it.
    "MAX_WEBHOOK_BODY_BYTES": 35 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": 50_000_000,
    "FETCH_TIMEOUT_SECONDS": 10.0,
    # Deny by default: only tests and local demos may fetch from (or call back to) loopback addresses.
    "FETCH_ALLOW_LOOPBACK": False,
    # Where retraining writes candidate checkpoints; None means <MEDIA_ROOT>/models.
    "MODEL_STORE": None,
    # real/ + fake/ folder merged into every retrain (optional), and the frozen set the promotion gate judges on
    # (required for promotion: without it no candidate is ever promoted).
    "RETRAIN_BASE_DIR": None,
    "EVAL_SET_DIR": None,
    "RETRAIN_MIN_NEW_LABELS": 50,
    "RETRAIN_TARGET_FPR": 0.05,
    # A candidate is promoted only if its AUROC gain over the active model on EVAL_SET_DIR is at least this with 95 %
    # confidence (paired bootstrap), so a lucky point estimate on a few hundred images promotes nothing.
    "GATE_MIN_AUROC_GAIN": 0.01,
    "CALIBRATION_TARGET_FPR": 0.01,
    "CALIBRATION_MIN_REAL_LABELS": 20,
    # PEM bundle of root certificates whose C2PA signatures are trusted (e.g. the C2PA trust list); only a trusted
    # manifest's "camera capture" claim counts as decisive.
    "C2PA_TRUST_ANCHORS_FILE": None,
    # After a promotion, uploads of the last this-many days are re-scored and changed verdicts go to review (0: off).
    "RESCORE_WINDOW_DAYS": 7,
    # The sweeper republishes uploads still `received` after this long (a broker outage), and resends uploads stuck
    # in `queued`/`fetched` after this long (a lost message: a killed worker, a broker restarted without its data).
    "SWEEP_RECEIVED_AFTER_SECONDS": 30.0,
    "SWEEP_STALLED_AFTER_SECONDS": 900.0,
    # How long each web process keeps a platform's row for its webhooks (0: read it on every request). A retired
    # webhook secret is refused at most this long after `--retire-old`; a newly added one is accepted at once.
    "WEBHOOK_PLATFORM_CACHE_SECONDS": 5.0,
    # How long each web process's publisher gathers webhooks' uploads into one message for the fetch queue after the
    # first (0: send each at once). Longer means fewer publishes under load and later starts for the fetch stage.
    "WEBHOOK_PUBLISH_LINGER_SECONDS": 0.02,
    # How long opening an upload in the console holds it for that moderator.
    "CONSOLE_CLAIM_SECONDS": 300,
}


def app_setting(name: str) -> Any:
    if name not in DEFAULTS:
        raise KeyError(f"unknown AI_MODERATION setting {name!r}")
    return getattr(settings, "AI_MODERATION", {}).get(name, DEFAULTS[name])
