"""Decode the bytes platforms send into model-ready RGB arrays, refusing hostile or broken input with a reason."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps

# HEIC/AVIF support registers itself with Pillow as an opener.
try:  # pragma: no cover - exercised only where the wheel is installed
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover
    pass

# Truncated files must fail loudly, never decode as half-grey images.
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_ASPECT = 50.0


class ImageRejected(ValueError):
    """The bytes are not an image we can score; the message says why, for the failed scan's reason."""


def decode_image(
    data: bytes,
    *,
    min_side: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect: float = DEFAULT_MAX_ASPECT,
) -> Image.Image:
    """Decode `data` to an upright RGB image whose shorter side is at least `min_side` where the source allows.

    JPEGs are decoded with DCT scaling (`draft`) straight to the smallest scale that still covers `min_side`, so a
    12-MP photo never decodes at full size. Animated images give their first frame; alpha is flattened on white.
    """
    if not data:
        raise ImageRejected("empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width < 1 or height < 1:
                raise ImageRejected("image has no pixels")
            if width * height > max_pixels:
                raise ImageRejected(f"image has {width}x{height} pixels, over the limit of {max_pixels}")
            if max(width, height) / min(width, height) > max_aspect:
                raise ImageRejected(f"image aspect {width}x{height} is beyond {max_aspect:g}:1")
            if getattr(image, "is_animated", False):
                image.seek(0)
            if image.format in ("JPEG", "MPO"):  # MPO: a JPEG with more pictures after it (Ultra HDR, 3D)
                image.draft("RGB", (min_side, min_side))
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageRejected("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise ImageRejected(f"corrupt image: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("P", "L", "RGB") and "transparency" in image.info:  # a palette entry or colour key (tRNS)
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit samples to 8 as Pillow does for 16-bit colour: the full scale, not the image's own maximum, which
        # stretched a dark picture's contrast and noise.
        array = np.asarray(image, dtype=np.float32) / 257.0
        return Image.fromarray(array.round().clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":  # floating point has no fixed scale: its own range
        array = np.asarray(image, dtype=np.float32)
        top = float(array.max()) or 1.0
        return Image.fromarray((array * (255.0 / top)).clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """Scale the shorter side to `size`, centre-crop to `size`x`size`, return HxWx3 uint8."""
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def enhance(array: np.ndarray, *, equalize_histogram: bool, denoise: bool) -> np.ndarray:
    """The reference detector's optional steps: non-local-means denoising, then luma histogram equalisation."""
    if denoise:
        array = cv2.fastNlMeansDenoisingColored(array, None, 3, 3, 7, 21)
    if equalize_histogram:
        ycrcb = cv2.cvtColor(array, cv2.COLOR_RGB2YCrCb)
        ycrcb[..., 0] = cv2.equalizeHist(ycrcb[..., 0])
        array = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
    return array


def load_model_input(
    data: bytes,
    size: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    equalize_histogram: bool = False,
    denoise: bool = False,
) -> np.ndarray:
    """Bytes → HxWx3 uint8 array at the model's input size; raises ImageRejected."""
    array = resize_center_crop(decode_image(data, min_side=size, max_pixels=max_pixels), size)
    return enhance(array, equalize_histogram=equalize_histogram, denoise=denoise)
