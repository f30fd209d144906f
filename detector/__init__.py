"""AI-generated image detection: a plain PyTorch/timm library with no Django imports.

The names below load on first use, so `detector.hashing` or `detector.evidence` can run in an I/O worker without
importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ModelCard": ".card",
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "DEFAULT_CHECKPOINT": ".detector",
    "Detector": ".detector",
    "DetectorConfig": ".detector",
    "ScanOutcome": ".detector",
    "Verdict": ".detector",
    "create_detector": ".detector",
    "ImageRejected": ".preprocess",
    "decode_image": ".preprocess",
    "load_model_input": ".preprocess",
}

__all__ = [
    "DEFAULT_CHECKPOINT",
    "Detector",
    "DetectorConfig",
    "ImageRejected",
    "ModelCard",
    "ScanOutcome",
    "Verdict",
    "create_detector",
    "decode_image",
    "load_checkpoint",
    "load_model_input",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from .card import ModelCard
    from .checkpoint import load_checkpoint, save_checkpoint
    from .detector import DEFAULT_CHECKPOINT, Detector, DetectorConfig, ScanOutcome, Verdict, create_detector
    from .preprocess import ImageRejected, decode_image, load_model_input


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'detector' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value
