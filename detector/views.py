"""How a model looks at an image: the whole picture resized (what it shows), or crops at native resolution (how it
was made).

Generators leave their traces in pixel-level texture, which resizing a whole upload to 224 px averages away; a crop at
native resolution keeps them. Uploads come at every size, so a crop model first brings the image to a canonical scale
(its shorter side at most `canonical_side`, the scale of the images it was trained on) and never upscales a photo that
is already smaller, except to the crop size itself.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .card import ModelCard
from .preprocess import resize_center_crop

VIEW_KINDS = ("resize", "native_crops")


def crop_boxes(width: int, height: int, size: int, max_crops: int) -> list[tuple[int, int]]:
    """Top-left corners of up to `max_crops` size x size crops: the centre first, then the four corners.

    A corner crop that would cover nearly the same pixels as one already taken (an image barely larger than a crop)
    is left out, so small images cost one crop, not five copies of it.
    """
    if width < size or height < size:
        raise ValueError(f"a {width}x{height} image has no {size}x{size} crop")
    candidates = [
        ((width - size) // 2, (height - size) // 2),
        (0, 0),
        (width - size, 0),
        (0, height - size),
        (width - size, height - size),
    ]
    chosen: list[tuple[int, int]] = []
    for left, top in candidates:
        if len(chosen) == max_crops:
            break
        # Distinct when it overlaps every chosen crop by less than three quarters of its area.
        if all((size - abs(left - l2)) * (size - abs(top - t2)) < 0.75 * size * size for l2, t2 in chosen):
            chosen.append((left, top))
    return chosen


def canonical_scale(image: Image.Image, *, canonical_side: int, min_side: int) -> Image.Image:
    """Downscale so the shorter side is at most `canonical_side`; upscale only an image smaller than a crop."""
    width, height = image.size
    short = min(width, height)
    if canonical_side and short > canonical_side:
        scale = canonical_side / short
    elif short < min_side:
        scale = min_side / short
    else:
        return image
    size = (max(min_side, round(width * scale)), max(min_side, round(height * scale)))
    # reducing_gap: a fast integer pre-shrink before the LANCZOS pass on large uploads, at no visible cost.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def model_views(image: Image.Image, card: ModelCard) -> np.ndarray:
    """The (K, S, S, 3) uint8 inputs a model scores for one image; its logits are averaged over the K views."""
    size = card.input_size
    if card.views == "resize":
        return resize_center_crop(image, size)[None]
    if card.views != "native_crops":
        raise ValueError(f"unknown view kind {card.views!r}; known: {VIEW_KINDS}")
    scaled = canonical_scale(image, canonical_side=card.canonical_side, min_side=size)
    array = np.asarray(scaled, dtype=np.uint8)
    boxes = crop_boxes(scaled.width, scaled.height, size, card.max_crops)
    return np.stack([array[top : top + size, left : left + size] for left, top in boxes])


def view_boxes(image: Image.Image, card: ModelCard) -> list[tuple[float, float, float, float]]:
    """Where each of `model_views` came from, as (left, top, right, bottom) fractions of the image."""
    width, height = image.size
    if card.views == "resize":
        side = min(width, height)
        fx, fy = side / width, side / height
        return [((1 - fx) / 2, (1 - fy) / 2, (1 + fx) / 2, (1 + fy) / 2)]
    scaled_w, scaled_h = canonical_scale(image, canonical_side=card.canonical_side, min_side=card.input_size).size
    size = card.input_size
    return [
        (left / scaled_w, top / scaled_h, (left + size) / scaled_w, (top + size) / scaled_h)
        for left, top in crop_boxes(scaled_w, scaled_h, size, card.max_crops)
    ]


def decode_side(card: ModelCard) -> int:
    """The shorter side a decoder must keep for this model (JPEG draft decoding may stop there)."""
    if card.views == "native_crops" and card.canonical_side:
        return max(card.input_size, card.canonical_side)
    return card.input_size
