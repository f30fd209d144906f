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


def natural_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Random shapes at every scale, with more energy at coarse scales (as in real photos), so perceptual hashes are
    as stable under re-encoding and resizing as they are for photos, and different seeds are unrelated pictures."""
    rng = np.random.default_rng(seed)
    total = np.zeros((height, width, 3), np.float32)
    for cell in (160, 80, 40, 20, 10, 5):
        coarse = rng.normal(0, 1, (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        for channel in range(3):
            layer = Image.fromarray(coarse[..., channel]).resize((width, height), Image.Resampling.BICUBIC)
            total[..., channel] += np.asarray(layer) * cell**0.5
    total = (total - total.min()) / (total.max() - total.min()) * 255
    return Image.fromarray(total.astype(np.uint8), "RGB")


def flat_or_noisy_png(label: int, rng: np.random.Generator, size: int = 48) -> bytes:
    """Dark flat 'real' photos and bright noisy 'AI' images: separable even on random-init features."""
    if label:
        array = rng.integers(150, 255, (size, size, 3), dtype=np.uint8)
    else:
        array = np.full((size, size, 3), rng.integers(10, 60), np.uint8)
        array[0, 0] = rng.integers(10, 60, 3)  # one dark pixel of its own: no two seeds give the same picture
    return encode(Image.fromarray(array), "PNG")
