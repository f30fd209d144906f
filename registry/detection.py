"""Adapts the apps' settings to the `detector` library and keeps loaded models per worker process.

The active model version comes from the registry (`ModelVersion`); a promotion or rollback is picked up on the next
batch without restarting workers.
"""

from __future__ import annotations

import threading
from pathlib import Path

from detector import Detector, DetectorConfig, create_detector
from moderation.conf import app_setting
from registry.models import ModelVersion

from .services import model_version_ensure_default

_lock = threading.Lock()
_detectors: dict[str, Detector] = {}


def detector_config(checkpoint: Path) -> DetectorConfig:
    return DetectorConfig(
        checkpoint=checkpoint,
        device=app_setting("DETECTOR_DEVICE"),
        cpu_runtime=app_setting("DETECTOR_CPU_RUNTIME"),
        onnx_cache_dir=Path(cache) if (cache := app_setting("DETECTOR_ONNX_CACHE_DIR")) else None,
        max_pixels=app_setting("MAX_IMAGE_PIXELS"),
        max_batch_size=app_setting("DETECTOR_MAX_BATCH_SIZE"),
    )


def get_detector_for(model_version: ModelVersion) -> Detector:
    """Loaded lazily, in the process that scores (never the prefork parent: CUDA cannot survive a fork)."""
    key = str(model_version.checkpoint_dir)
    with _lock:
        if key not in _detectors:
            # Keep at most the active and the shadow model in memory.
            while len(_detectors) >= 2:
                _detectors.pop(next(iter(_detectors)))
            _detectors[key] = create_detector(detector_config(model_version.checkpoint_dir))
        return _detectors[key]


def get_detector() -> Detector:
    return get_detector_for(model_version_ensure_default())
