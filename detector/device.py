"""Device, numeric precision and runtime, chosen in one place."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    for the CNN on this project's 2-core x86 machines (`cpu_layouts_img_s` in the bench: ~3x eager PyTorch FP32 and
    faster than PyTorch bf16 even where AVX-512 bf16 or AMX exists, `docs/experiments/bf16_cnn.py`; transformers
    may differ, see `placement_for`); `cpu_runtime="torch"` keeps eager PyTorch (FP32, channels_last) for every
    model."""
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
    # "auto" lets each model pick its CPU path (placement_for); an explicit runtime applies to every model.
    return Placement(torch.device("cpu"), torch.float32, channels_last=True, runtime=runtime)


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matrix products at about twice the fp32 rate."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def placement_for(module: torch.nn.Module, placement: Placement, cpu_runtime: str = "auto") -> Placement:
    """A model's own placement on a CPU: transformers run in PyTorch bf16 where the CPU has native bf16 (their time
    is in matrix products: DINOv2 ViT-S/14 42 img/s against 25 in ONNX Runtime fp32 on this project's 2-core
    AVX-512 machine; logits within 0.2 of fp32), convolutional networks stay on ONNX Runtime fp32 (depthwise
    convolutions gain nothing from bf16). An explicit `cpu_runtime` keeps the placement as chosen."""
    from timm.models.vision_transformer import VisionTransformer

    if placement.device.type != "cpu" or cpu_runtime != "auto" or not isinstance(module, VisionTransformer):
        return placement
    if not cpu_has_native_bf16():
        return placement
    return replace(placement, dtype=torch.bfloat16, channels_last=False, runtime="torch")
