"""CPU scoring through ONNX Runtime: the same network, exported once, about 2x faster than eager PyTorch here.

ONNX Runtime folds batch norms into convolutions, fuses the activations and runs depthwise convolutions with its own
kernels, which is where eager PyTorch loses most time on EfficientNet-Lite0 (`python -m detector bench` measures both:
`cpu_layouts_img_s`). The exported graph takes the batch exactly as decoding leaves it (uint8, NxHxWx3) and returns
the AI logit, so normalisation runs inside the graph too.

Exports are cached on disk, keyed by the weights, the card and the library versions: a worker pays the few seconds of
export once per model version, later processes load the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from .card import ModelCard

# Bump when the exported graph's inputs, outputs or computation change, so stale cached files are never loaded.
GRAPH_FORMAT = "uint8-nhwc-to-logit/3"


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ai-moderation" / "onnx"


OUTPUTS = ("logit", "features")


class _LogitGraph(nn.Module):
    """uint8 NxHxWx3 → AI logit (or the features the head reads): the serving normalisation around the network."""

    def __init__(self, module: nn.Module, card: ModelCard, output: str = "logit") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
        self.module = module
        self.output = output
        self.register_buffer("mean", torch.tensor(card.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(card.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
        if self.output == "features":
            return self.module.forward_head(self.module.forward_features(x), pre_logits=True).float()
        return self.module(x).float().squeeze(1)


def model_key(module: nn.Module, card: ModelCard) -> str:
    """What the exported graph depends on: every weight, the card, and the code that builds and runs it."""
    digest = hashlib.sha256()
    for part in (GRAPH_FORMAT, card.to_json(), torch.__version__, version("timm"), onnxruntime.__version__):
        digest.update(part.encode() + b"\0")
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def export_onnx(module: nn.Module, card: ModelCard, path: Path, *, output: str = "logit") -> None:
    """Export fp32 with a dynamic batch dimension; written to a temporary name first, so readers never see half.

    The torch.export-based exporter is slow to run (the texture CNN: ~27 s on a slow 2-core VM), and the deprecated
    TorchScript exporter took ~1.6 s for the same model. But the TorchScript exporter's graphs ran both CNNs 16-23 %
    slower in ONNX Runtime, and an export is paid once per model version, not per scan.
    """
    graph = _LogitGraph(module.float().to(memory_format=torch.contiguous_format), card, output).eval()
    example = torch.zeros(2, card.input_size, card.input_size, 3, dtype=torch.uint8)
    quiet = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript")]
    levels = [logger.level for logger in quiet]
    with warnings.catch_warnings():
        # The exporter's notes on its own internals (warnings, INFO logs per graph pass) are not ours to act on.
        warnings.simplefilter("ignore")
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        try:
            program = torch.onnx.export(
                graph,
                (example,),
                input_names=["images"],
                output_names=[output],
                dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1)}},
                dynamo=True,
                verbose=False,
            )
        finally:
            for logger, level in zip(quiet, levels, strict=True):
                logger.setLevel(level)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        partial = Path(handle.name)
    try:
        program.save(str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def cpu_session(path: Path, *, threads: int) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session for one exported graph, with every graph optimisation on."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle ONNX Runtime threads would otherwise spin and take the cores that decode the next batch.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxScorer:
    """AI logits (or, with output="features", the head's input features) for uint8 batches, from an ONNX Runtime
    session on the CPU."""

    def __init__(
        self,
        module: nn.Module,
        card: ModelCard,
        *,
        threads: int,
        cache_dir: Path | None = None,
        output: str = "logit",
    ) -> None:
        suffix = "" if output == "logit" else f"-{output}"
        path = (cache_dir or default_cache_dir()) / f"{card.name}-{model_key(module, card)}{suffix}.onnx"
        if not path.is_file():
            export_onnx(module, card, path, output=output)
        self.path = path
        self._session = cpu_session(path, threads=threads)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """One output row per image: the logit, or the feature vector of a features graph."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 NxHxWx3 images, got {images.dtype} {images.shape}")
        return self._session.run(None, {"images": np.ascontiguousarray(images)})[0].astype(np.float64)
