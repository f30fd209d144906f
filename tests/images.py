"""Image fixtures generated in code: no binary test data in the repo."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def pattern(width: int, height: int, seed: int = 0) -> Image.Image:
    """A non-constant RGB image (gradients plus noise) so models and resizers see real structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), ((x + y) * 127 // max(1, width + height))], -1
    )
    noise = rng.integers(0, 40, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0, quality: int = 90) -> bytes:
    return encode(pattern(width, height, seed), "JPEG", quality=quality)
