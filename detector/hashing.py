"""Perceptual hashes (PDQ) of images and an index that finds near-duplicates of known fakes among millions.

PDQ is Meta's 256-bit perceptual hash (the one ThreatExchange and HMA exchange); two hashes within 31 bits are
treated as the same picture after re-encoding, resizing or light cropping. The index is faiss's multi-index hashing:
the 256 bits are cut into 16 chunks of 16, and each chunk is probed with at most one bit flipped, which finds *every*
stored hash within 31 bits (two differing bits in all 16 chunks would need 32), without comparing against them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .preprocess import DEFAULT_MAX_PIXELS, decode_image

PDQ_BITS = 256
# HMA's default: beyond 31 bits, unrelated photos start to collide.
DEFAULT_MATCH_DISTANCE = 31
# PDQ's own advice: hashes of flat, featureless images (quality < 50) match too much to be trusted.
MIN_QUALITY = 50
# PDQ downsamples to 64x64 internally; hashing a ~512-px decode gives the same hash far faster than a 12-MP one.
HASH_SIDE = 512
# PDQ does not survive crops (a centred 5 % crop moves it ~50 bits), so a known fake is banked with hashes of centred
# crops too, as (horizontal, vertical) fractions cut from each side: evenly on all sides, and in one dimension only,
# the way platforms crop to an aspect ratio. Crops from one side only still do not match.
BANK_CROPS = (
    (0.025, 0.025),
    (0.05, 0.05),
    (0.025, 0.0),
    (0.05, 0.0),
    (0.1, 0.0),
    (0.0, 0.025),
    (0.0, 0.05),
    (0.0, 0.1),
)
_CHUNKS, _CHUNK_BITS = 16, 16


@dataclass(frozen=True)
class PdqHash:
    hex: str  # 64 hex digits, most significant bit first
    quality: int  # 0-100

    @property
    def usable(self) -> bool:
        return self.quality >= MIN_QUALITY


def pdq_hash(image: Image.Image) -> PdqHash:
    import pdqhash

    rgb = image.convert("RGB")
    if max(rgb.size) > 2 * HASH_SIDE:
        rgb.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    bits, quality = pdqhash.compute(np.asarray(rgb))
    return PdqHash(hex=np.packbits(bits.astype(np.uint8)).tobytes().hex(), quality=int(quality))


def pdq_bank_hashes(image: Image.Image) -> list[PdqHash]:
    """The hashes to bank for a known fake: the whole picture and its centred crops (BANK_CROPS)."""
    width, height = image.size
    hashes = [pdq_hash(image)]
    for horizontal, vertical in BANK_CROPS:
        dx, dy = round(width * horizontal), round(height * vertical)
        hashes.append(pdq_hash(image.crop((dx, dy, width - dx, height - dy))))
    return hashes


def pdq_hash_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PdqHash:
    """Hash encoded image bytes (JPEGs are draft-decoded near HASH_SIDE). Raises ImageRejected for bad input."""
    return pdq_hash(decode_image(data, min_side=HASH_SIDE, max_pixels=max_pixels))


def pdq_bank_hashes_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[PdqHash]:
    return pdq_bank_hashes(decode_image(data, min_side=HASH_SIDE, max_pixels=max_pixels))


def hamming_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _codes(hexes: Sequence[str]) -> np.ndarray:
    if not hexes:
        return np.zeros((0, PDQ_BITS // 8), np.uint8)
    codes = np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(hexes), PDQ_BITS // 8)
    return np.ascontiguousarray(codes)


class HashIndex:
    """PDQ hashes with integer ids (e.g. database rows), searchable by Hamming distance up to 31 bits, exactly."""

    def __init__(self) -> None:
        import faiss

        self._index = faiss.IndexBinaryMultiHash(PDQ_BITS, _CHUNKS, _CHUNK_BITS)
        self._index.nflip = 1
        self._ids = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: Sequence[int], hexes: Sequence[str]) -> None:
        if len(ids) != len(hexes):
            raise ValueError("one id per hash")
        if not hexes:
            return
        self._index.add(_codes(hexes))
        self._ids = np.concatenate([self._ids, np.asarray(ids, np.int64)])

    def search(
        self, hexes: Sequence[str], *, max_distance: int = DEFAULT_MATCH_DISTANCE
    ) -> list[list[tuple[int, int]]]:
        """For each query, the (id, distance) of every stored hash within `max_distance`, nearest first."""
        if not 0 <= max_distance <= DEFAULT_MATCH_DISTANCE:
            # Beyond 31 bits the one-flip probing no longer guarantees every match is found.
            raise ValueError(f"max_distance must be within 0..{DEFAULT_MATCH_DISTANCE}")
        if not hexes:
            return []
        if not len(self):
            return [[] for _ in hexes]
        limits, distances, positions = self._index.range_search(_codes(hexes), max_distance + 1)
        results = []
        for query in range(len(hexes)):
            span = slice(limits[query], limits[query + 1])
            found = sorted(zip(distances[span].tolist(), self._ids[positions[span]].tolist(), strict=True))
            results.append([(int(row_id), int(distance)) for distance, row_id in found])
        return results
