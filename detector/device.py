"""Device and numeric precision, chosen in one place."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool

    def describe(self) -> str:
        layout = "/channels_last" if self.channels_last else ""
        return f"{self.device.type}/{str(self.dtype).removeprefix('torch.')}{layout}"


def choose_placement(preference: str = "auto") -> Placement:
    """CUDA gets FP16 + channels_last; the CPU gets FP32 + channels_last, the fastest of fp32/bf16 layouts measured
    on this project's 2-core x86 machines (bf16 has no fast kernels there)."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DETECTOR_DEVICE=cuda but no CUDA device is available")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        return Placement(torch.device("cuda"), torch.float16, channels_last=True)
    return Placement(torch.device("cpu"), torch.float32, channels_last=True)
