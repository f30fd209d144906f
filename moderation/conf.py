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
    "DETECTOR_MAX_BATCH_SIZE": 32,
    "MAX_IMAGE_BYTES": 25 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": 50_000_000,
    "FETCH_TIMEOUT_SECONDS": 10.0,
    # Deny by default: only tests and local demos may fetch from loopback addresses.
    "FETCH_ALLOW_LOOPBACK": False,
    "DEFAULT_REVIEW_MARGIN": 0.1,
}


def app_setting(name: str) -> Any:
    if name not in DEFAULTS:
        raise KeyError(f"unknown AI_MODERATION setting {name!r}")
    return getattr(settings, "AI_MODERATION", {}).get(name, DEFAULTS[name])
