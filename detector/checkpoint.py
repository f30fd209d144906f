"""Checkpoints are a safetensors file plus a JSON model card in one folder; nothing is ever unpickled."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .card import CARD_FILENAME, WEIGHTS_FILENAME, ModelCard
from .registry import build_model

# The linear head stays float32: it is tiny, and standardisation folded into it can exceed float16's range.
HEAD_PREFIXES = ("classifier.", "head.", "fc.")


def save_checkpoint(model: nn.Module, card: ModelCard, directory: Path, *, dtype: torch.dtype = torch.float16) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        key: (value.to(dtype) if value.is_floating_point() and not key.startswith(HEAD_PREFIXES) else value)
        for key, value in model.state_dict().items()
    }
    state = {key: value.contiguous() for key, value in state.items()}
    # One metadata entry: safetensors writes a map's entries in a random order, so two would make the same weights
    # one of two files, with different weights_sha256 (and ONNX cache keys).
    save_file(state, str(directory / WEIGHTS_FILENAME), metadata={"model": card.model_version})
    card = dataclasses.replace(card, weights_sha256=weights_sha256(directory / WEIGHTS_FILENAME))
    (directory / CARD_FILENAME).write_text(card.to_json() + "\n")
    return directory


def weights_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(directory: Path) -> tuple[nn.Module, ModelCard]:
    """The model in float32 eval mode with its card. Keys must match the architecture exactly."""
    directory = Path(directory)
    card_path = directory / CARD_FILENAME
    weights_path = directory / WEIGHTS_FILENAME
    if not card_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{directory} is not a checkpoint: it needs {CARD_FILENAME} and {WEIGHTS_FILENAME}")
    card = ModelCard.load(card_path)
    if card.weights_sha256 and weights_sha256(weights_path) != card.weights_sha256:
        raise ValueError(
            f"{weights_path} does not match its card ({card.model_version}): the card names weights with sha256 "
            f"{card.weights_sha256[:12]}…; a checkpoint's two files must be replaced together"
        )
    model = build_model(card.architecture)
    state = {
        key: value.float() if value.is_floating_point() else value for key, value in load_file(weights_path).items()
    }
    model.load_state_dict(state, strict=True)
    return model.eval(), card
