"""AI-generated image detection: a plain PyTorch/timm library with no Django imports."""

from .card import ModelCard
from .checkpoint import load_checkpoint, save_checkpoint
from .detector import DEFAULT_CHECKPOINT, Detector, DetectorConfig, ScanOutcome, Verdict, create_detector
from .preprocess import ImageRejected, decode_image, load_model_input

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
