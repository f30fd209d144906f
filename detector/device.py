"""Device, numeric precision and runtime, chosen in one place."""

from __future__ import annotations

from dataclasses import dataclass

import torch

RUNTIMES = ("auto", "onnxruntime", "torch")


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    # What scores batches: "torch" (eager PyTorch on `device`) or "onnxruntime" (CPU only). Heatmaps always use torch.
    runtime: str = "torch"

    def describe(self) -> str:
        layout = "/channels_last" if self.channels_last else ""
        runtime = "/onnxruntime" if self.runtime == "onnxruntime" else ""
        return f"{self.device.type}/{str(self.dtype).removeprefix('torch.')}{layout}{runtime}"


def choose_placement(preference: str = "auto", cpu_runtime: str = "auto") -> Placement:
    """CUDA gets FP16 + channels_last in PyTorch. The CPU gets FP32 through ONNX Runtime, the fastest path measured
    on this project's 2-core x86 machines (`cpu_layouts_img_s` in the bench: ~3x eager PyTorch FP32 on the CNN and
    faster than PyTorch bf16 even where AVX-512 bf16 exists); `cpu_runtime="torch"` keeps eager PyTorch (FP32,
    channels_last)."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {preference!r}")
    if cpu_runtime not in RUNTIMES:
        raise ValueError(f"cpu runtime must be one of {', '.join(RUNTIMES)}, not {cpu_runtime!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DETECTOR_DEVICE=cuda but no CUDA device is available")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        return Placement(torch.device("cuda"), torch.float16, channels_last=True)
    runtime = "torch" if cpu_runtime == "torch" else "onnxruntime"
    return Placement(torch.device("cpu"), torch.float32, channels_last=True, runtime=runtime)
