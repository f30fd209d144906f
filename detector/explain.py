"""Grad-CAM heatmaps for the CNN and the ViT, rendered over the whole image as a PNG.

Each view the model scored (a centre crop of the resized image, or crops at native resolution) gets its own map,
placed where the view came from; the parts no view covered are dimmed, so a moderator is not misled about where the
evidence came from.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

DISPLAY_LONG_SIDE = 768


def _cnn_target(model: nn.Module) -> nn.Module:
    """The last convolutional activation of a timm EfficientNet-style model (before global pooling)."""
    if hasattr(model, "gradcam_layer"):
        return model.gradcam_layer()
    for name in ("bn2", "conv_head", "act2"):
        layer = getattr(model, name, None)
        if isinstance(layer, nn.Module) and not isinstance(layer, nn.Identity):
            return layer
    raise ValueError(f"no Grad-CAM target layer known for {type(model).__name__}")


def grad_cam(model: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """Class-activation maps (N, h, w) in [0, 1] for the AI logit, from the model's last spatial features.

    CNNs: the final conv activation. ViTs: the patch tokens entering the last block (the final block's attention is
    what carries them into the class token, so gradients there are meaningful).
    """
    captured: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["features"] = output

    is_vit = hasattr(model, "blocks") and hasattr(model, "patch_embed")
    target = model.blocks[-2] if is_vit else _cnn_target(model)
    handle = target.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            model.zero_grad(set_to_none=True)
            logits = model(batch.requires_grad_(True)).sum()
            logits.backward()
    finally:
        handle.remove()
    features, grads = captured["features"].detach(), captured["features"].grad.detach()
    if is_vit:
        prefix = getattr(model, "num_prefix_tokens", 1)
        features, grads = features[:, prefix:], grads[:, prefix:]
        side = round(features.shape[1] ** 0.5)
        weights = grads.mean(dim=1, keepdim=True)  # (N, 1, C)
        cam = torch.relu((weights * features).sum(-1)).reshape(-1, side, side)
    else:
        weights = grads.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        cam = torch.relu((weights * features).sum(1))
    cam = cam.float().cpu().numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0)


def render_overlay(image: Image.Image, cams: list[tuple[np.ndarray, tuple[float, float, float, float]]]) -> bytes:
    """PNG of `image` (scaled to DISPLAY_LONG_SIDE) with each cam blended over its box, given in fractions (left,
    top, right, bottom) of the image; where boxes overlap the stronger activation shows. What no box covers is
    dimmed."""
    scale = min(1.0, DISPLAY_LONG_SIDE / max(image.size))
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    base = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    heat = np.zeros((height, width), np.float32)
    seen = np.zeros((height, width), bool)
    for cam, box in cams:
        left, top = round(box[0] * width), round(box[1] * height)
        right, bottom = max(left + 1, round(box[2] * width)), max(top + 1, round(box[3] * height))
        patch = cv2.resize(cam.astype(np.float32), (right - left, bottom - top), interpolation=cv2.INTER_CUBIC)
        heat[top:bottom, left:right] = np.maximum(heat[top:bottom, left:right], patch.clip(0, 1))
        seen[top:bottom, left:right] = True
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
    alpha = (0.25 + 0.45 * heat)[..., None]
    out = np.where(seen[..., None], base * (1 - alpha) + colour * alpha, base * 0.45)  # dim what no model saw
    buffer = io.BytesIO()
    Image.fromarray(out.clip(0, 255).astype(np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
