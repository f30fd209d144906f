"""PDQ hashes survive re-encoding, resizing and cropping; unrelated pictures stay apart; the index finds all within
31 bits and nothing beyond."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from detector.hashing import HashIndex, hamming_distance, pdq_bank_hashes, pdq_hash, pdq_hash_bytes
from tests.images import encode, natural_photo


def _variants(image: Image.Image) -> dict[str, Image.Image]:
    width, height = image.size
    dx, dy = round(width * 0.025), round(height * 0.025)
    return {
        "jpeg_q60": Image.open(io.BytesIO(encode(image, "JPEG", quality=60))),
        "half_size": image.resize((width // 2, height // 2), Image.Resampling.BICUBIC),
        "crop_5pct_centred": image.crop((dx, dy, width - dx, height - dy)),
        "crop_to_aspect": image.crop((round(width * 0.04), 0, width - round(width * 0.04), height)),
    }


@pytest.mark.parametrize("seed", range(4))
def test_near_duplicates_match_a_banked_fake(seed):
    original = natural_photo(640, 480, seed)
    banked = pdq_bank_hashes(original)
    assert all(h.usable for h in banked)
    for name, variant in _variants(original).items():
        distance = min(hamming_distance(h.hex, pdq_hash(variant).hex) for h in banked)
        assert distance <= 31, f"{name}: {distance} bits"


def test_a_crop_needs_the_banked_crop_hashes():
    """Why the bank keeps crop hashes: PDQ of the whole picture alone misses a centred 5 % crop."""
    original = natural_photo(640, 480, 0)
    cropped = pdq_hash(_variants(original)["crop_5pct_centred"]).hex
    assert hamming_distance(pdq_hash(original).hex, cropped) > 31


def test_unrelated_pictures_are_far_apart():
    hashes = [pdq_hash(natural_photo(640, 480, seed)).hex for seed in range(10, 22)]
    closest = min(hamming_distance(a, b) for a, b in itertools.combinations(hashes, 2))
    assert closest > 31


def test_hash_of_encoded_bytes_matches_the_hash_of_the_picture():
    image = natural_photo(3000, 2000, 5)
    from_bytes = pdq_hash_bytes(encode(image, "JPEG", quality=92))  # draft-decoded at 1/4 scale
    assert hamming_distance(from_bytes.hex, pdq_hash(image).hex) <= 16


def test_flat_images_are_flagged_unusable():
    assert not pdq_hash(Image.new("RGB", (256, 256), (120, 130, 140))).usable


def _flipped(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for bit in bits:
        value ^= 1 << bit
    return f"{value:064x}"


def test_index_finds_every_hash_within_31_bits_and_none_beyond():
    rng = np.random.default_rng(0)
    bank = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(2000)]
    index = HashIndex()
    index.add(list(range(1000, 3000)), bank)
    target = bank[7]
    within = _flipped(target, rng.choice(256, 31, replace=False).tolist())
    beyond = _flipped(target, rng.choice(256, 32, replace=False).tolist())

    exact, near, far = index.search([target, within, beyond])
    assert exact[0] == (1007, 0)
    assert near == [(1007, 31)]
    assert far == []
    assert index.search([within], max_distance=30) == [[]]
    with pytest.raises(ValueError):
        index.search([target], max_distance=32)
    assert HashIndex().search([target]) == [[]]
