"""Decoding what platforms really send: every Pillow mode, orientation, sizes and broken files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from detector import ImageRejected, decode_image, load_model_input
from tests.images import encode, jpeg_bytes, pattern


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb(mode):
    image = (
        pattern(64, 48).convert(mode) if mode not in ("I;16", "I", "F") else pattern(64, 48).convert("L").convert(mode)
    )
    fmt = {"CMYK": "JPEG", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    decoded = decode_image(encode(image, fmt), min_side=32)
    assert decoded.mode == "RGB" and decoded.size == (64, 48)
    assert np.asarray(decoded).std() > 0


def test_transparent_pixels_are_flattened_on_white():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert decode_image(encode(rgba, "PNG"), min_side=8).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_transparent_colour_key_is_flattened_on_white_too(mode):
    """Grey and RGB PNGs can mark one colour transparent (tRNS): the same logo must reach the model on the same
    white whichever way it was encoded."""
    image = Image.new(mode, (10, 10), 0)
    image.putpixel((5, 5), 200 if mode == "L" else (200, 200, 200))
    decoded = decode_image(encode(image, "PNG", transparency=0 if mode == "L" else (0, 0, 0)), min_side=8)
    assert decoded.getpixel((0, 0)) == (255, 255, 255) and decoded.getpixel((5, 5)) == (200, 200, 200)


def test_sixteen_bit_grey_keeps_its_brightness():
    ramp = np.linspace(0, 30000, 64 * 48).reshape(48, 64).astype(np.uint16)
    decoded = np.asarray(decode_image(encode(Image.fromarray(ramp), "PNG"), min_side=32))
    assert decoded.max() == round(30000 / 257), "scaled as 16-bit, not stretched to the image's own maximum"


def test_a_multi_picture_jpeg_is_draft_decoded_like_a_jpeg():
    first, second = pattern(4000, 3000), pattern(400, 300)
    mpo = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(mpo)).format == "MPO"
    assert decode_image(mpo, min_side=224).size == decode_image(encode(first, "JPEG"), min_side=224).size


def test_exif_orientation_is_applied():
    image = pattern(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode_image(encode(image, "JPEG", exif=exif), min_side=40)
    assert decoded.size == (40, 80)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    red, _green, blue = decode_image(data, min_side=16).getpixel((5, 5))
    assert red > 200 and blue < 50


def test_webp_and_heif_decode():
    assert decode_image(encode(pattern(50, 40), "WEBP"), min_side=16).size == (50, 40)
    pillow_heif = pytest.importorskip("pillow_heif")
    assert pillow_heif
    assert decode_image(encode(pattern(64, 64), "HEIF"), min_side=16).size == (64, 64)


def test_large_jpeg_is_draft_decoded_not_full_size():
    decoded = decode_image(jpeg_bytes(4000, 3000), min_side=224)
    assert min(decoded.size) >= 224
    assert decoded.size[0] <= 4000 // 8 * 2, "DCT scaling should have shrunk a 4000px JPEG"


def test_model_input_has_the_model_size_for_tiny_and_wide_images():
    assert load_model_input(jpeg_bytes(1, 1), 224).shape == (224, 224, 3)
    assert load_model_input(jpeg_bytes(32, 32), 224).shape == (224, 224, 3)
    assert load_model_input(jpeg_bytes(1000, 100), 224).shape == (224, 224, 3)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty image"),
        (b"GIF89a" + b"\x00" * 10, "not a recognised image format"),
        (b"hello world", "not a recognised image format"),
        (jpeg_bytes(640, 480)[:2000], "corrupt image"),
    ],
)
def test_broken_input_is_rejected_with_a_reason(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        decode_image(data, min_side=224)


def test_too_many_pixels_and_extreme_aspect_are_refused_before_decoding():
    with pytest.raises(ImageRejected, match="over the limit"):
        decode_image(encode(Image.new("L", (3000, 3000)), "PNG"), min_side=224, max_pixels=1_000_000)
    with pytest.raises(ImageRejected, match="aspect"):
        decode_image(encode(Image.new("L", (100000, 1)), "PNG"), min_side=224)
