"""Adapts the apps' settings to the `detector` library and keeps one loaded model per worker process."""

from __future__ import annotations

import threading
from pathlib import Path

from detector import DEFAULT_CHECKPOINT, Detector, DetectorConfig, create_detector

from .conf import app_setting

_lock = threading.Lock()
_detector: Detector | None = None


def detector_config() -> DetectorConfig:
    checkpoint = app_setting("DETECTOR_CHECKPOINT")
    return DetectorConfig(
        checkpoint=Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT,
        device=app_setting("DETECTOR_DEVICE"),
        max_pixels=app_setting("MAX_IMAGE_PIXELS"),
        max_batch_size=app_setting("DETECTOR_MAX_BATCH_SIZE"),
    )


def get_detector() -> Detector:
    """Loaded lazily, in the process that scores (never the prefork parent: CUDA cannot survive a fork)."""
    global _detector
    with _lock:
        if _detector is None:
            _detector = create_detector(detector_config())
        return _detector
