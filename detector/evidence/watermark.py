"""The invisible watermark Stable Diffusion's reference pipelines embed (`invisible-watermark`, method dwtDct).

The decoder is a vectorised re-implementation of `imwatermark`'s dwtDct decode (which loops over 4x4 blocks in
Python, ~100 ms per megapixel per message): the per-block bits are computed once and then folded into each
known message length. The tests check it against `imwatermark`'s own encoder.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image

from .findings import Finding


def _bits_of_bytes(message: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(message, dtype=np.uint8)).astype(bool)


def _bits_of_int(message: int) -> np.ndarray:
    # The reference code builds its bit list with bin(m)[2:], which drops leading zeros: so do we.
    return np.array([bit == "1" for bit in bin(message)[2:]], dtype=bool)


WATERMARKS: dict[str, np.ndarray] = {
    "StableDiffusionV1": _bits_of_bytes(b"StableDiffusionV1"),  # CompVis txt2img/img2img scripts
    "SDV2": _bits_of_bytes(b"SDV2"),  # Stability-AI/stablediffusion scripts
    "SDXL": _bits_of_int(0b101100111110110010010000011110111011000110011110),  # diffusers SDXL pipelines
    "SGM": _bits_of_int(0b001010101111111010000111100111001111010100101110),  # Stability-AI/generative-models
}
# Below this side the encoder refuses to embed; above this size an image is not a raw generator output (upscaling
# or resizing destroys the mark), and decoding it would cost a full-resolution decode for nothing.
MIN_SIDE = 256
MAX_PIXELS = 4_000_000
# Natural images decode to near-random bits (about half wrong); a real mark survives with a few flipped bits.
MAX_BIT_ERROR_RATE = 0.15
_SCALE, _BLOCK = 36, 4  # imwatermark's dwtDct defaults: U channel step 36, 4x4 blocks


def sd_watermark_findings(data: bytes) -> list[Finding]:
    """A `sd_watermark` finding per known message found; nothing for images outside the size range it applies to."""
    with warnings.catch_warnings():
        # Pillow warns about large images on open; we never decode one past MAX_PIXELS, so the warning is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
    with image:
        width, height = image.size
        if min(width, height) < MIN_SIDE or width * height > MAX_PIXELS:
            return []
        rgb = np.asarray(image.convert("RGB"))
    block_bits = _block_bits(rgb)
    findings = []
    for name, expected in WATERMARKS.items():
        errors = int(np.count_nonzero(_fold(block_bits, expected.size) != expected))
        if errors <= int(MAX_BIT_ERROR_RATE * expected.size):
            detail = {"bit_errors": errors, "bits": int(expected.size)}
            findings.append(Finding("sd_watermark", name, "strong", "watermark:dwtDct", True, detail))
    return findings


def _block_bits(rgb: np.ndarray) -> np.ndarray:
    """One bit per 4x4 block of the Haar approximation of the U channel, in imwatermark's raster order."""
    u = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)[:, :, 1]
    rows, cols = u.shape[0] // 4 * 4, u.shape[1] // 4 * 4
    u = u[:rows, :cols].astype(np.float64)
    approximation = (u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2  # Haar level-1 cA
    block_rows, block_cols = approximation.shape[0] // _BLOCK, approximation.shape[1] // _BLOCK
    blocks = (
        approximation[: block_rows * _BLOCK, : block_cols * _BLOCK]
        .reshape(block_rows, _BLOCK, block_cols, _BLOCK)
        .transpose(0, 2, 1, 3)
        .reshape(-1, _BLOCK * _BLOCK)
    )
    # The mark sits in the largest-magnitude coefficient after the first: which half of the quantisation step.
    magnitudes = np.abs(blocks[:, 1:])
    strongest = np.take_along_axis(magnitudes, magnitudes.argmax(axis=1)[:, None], axis=1)[:, 0]
    return (strongest % _SCALE) > _SCALE / 2


def _fold(block_bits: np.ndarray, length: int) -> np.ndarray:
    """Block i votes for message bit i mod length; the majority wins (imwatermark's mean > 127/255)."""
    index = np.arange(block_bits.size) % length
    votes = np.bincount(index, weights=block_bits, minlength=length)
    return votes / np.maximum(np.bincount(index, minlength=length), 1) * 255 > 127
