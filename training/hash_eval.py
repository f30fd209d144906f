"""How well the PDQ hash bank separates near-duplicates from unrelated pictures, on any folders of images.

Every image is banked as a confirmed fake would be (whole picture + centred crops). Its own edited copies (JPEG q60,
half size, a centred 5 % crop, a crop to a narrower aspect ratio, and a 5 % crop off one side) should match it; every
*other* image should not. All pairs are compared, so the false-match rate is over n·(n-1) ordered pairs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from detector.hashing import DEFAULT_MATCH_DISTANCE, pdq_bank_hashes, pdq_hash

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _edits(image: Image.Image) -> dict[str, Image.Image]:
    width, height = image.size
    dx, dy = round(width * 0.025), round(height * 0.025)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=60)
    return {
        "jpeg_q60": Image.open(io.BytesIO(buffer.getvalue())),
        "half_size": image.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BICUBIC),
        "crop_5pct_centred": image.crop((dx, dy, width - dx, height - dy)),
        "crop_to_aspect_6pct_width": image.crop((round(width * 0.03), 0, width - round(width * 0.03), height)),
        "crop_5pct_one_side": image.crop((2 * dx, 0, width, height)),
    }


def _bits(hexes: list[str]) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(hexes), 32), axis=1)


def evaluate_hash_bank(folders: list[Path], *, limit_per_folder: int | None = None) -> dict[str, Any]:
    files = []
    for folder in folders:
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found[:limit_per_folder] if limit_per_folder else found
    queries: list[str] = []
    names: list[str] = []
    banked: list[list[str]] = []
    edits: dict[str, list[str]] = {}
    low_quality = 0
    for path in tqdm(files, desc="hashing", unit="image"):
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        image.thumbnail((1024, 1024))
        bank = pdq_bank_hashes(image)
        if not bank[0].usable:
            low_quality += 1
            continue
        queries.append(bank[0].hex)
        names.append(str(path))
        banked.append([h.hex for h in bank])
        for name, edited in _edits(image).items():
            edits.setdefault(name, []).append(pdq_hash(edited).hex)

    n, per_image = len(queries), len(banked[0]) if banked else 0
    bank_bits = _bits([h for hashes in banked for h in hashes]).astype(np.float32)  # (n·k, 256), BLAS-friendly

    def nearest_per_image(query_hexes: list[str]) -> np.ndarray:
        """(queries, n) Hamming distance from each query to the nearest banked hash of each image."""
        query_bits = _bits(query_hexes).astype(np.float32)
        # |a-b| summed over bits = Hamming distance, via one matrix product: d = a·(1-b) + (1-a)·b.
        distances = query_bits @ (1 - bank_bits).T + (1 - query_bits) @ bank_bits.T
        return np.minimum.reduceat(distances, np.arange(0, n * per_image, per_image), axis=1).round().astype(np.int32)

    unrelated = nearest_per_image(queries)
    np.fill_diagonal(unrelated, 256)
    false_pairs = np.argwhere(unrelated <= DEFAULT_MATCH_DISTANCE)
    report: dict[str, Any] = {
        "images": len(files),
        "hashed": n,
        "low_quality_skipped": low_quality,
        "match_distance": DEFAULT_MATCH_DISTANCE,
        "banked_hashes_per_image": per_image,
        "near_duplicate_match_rate": {},
        "unrelated_pairs": int(n * (n - 1)),
        "false_matches": len(false_pairs),
        "false_match_rate": float(len(false_pairs) / max(1, n * (n - 1))),
        "closest_unrelated_distance": int(unrelated.min()) if n > 1 else None,
        "false_match_examples": [[names[i], names[j], int(unrelated[i, j])] for i, j in false_pairs[:60]],
    }
    for name, hexes in edits.items():
        own = np.diagonal(nearest_per_image(hexes))
        report["near_duplicate_match_rate"][name] = {
            "rate": float(np.mean(own <= DEFAULT_MATCH_DISTANCE)),
            "median_distance": float(np.median(own)),
        }
    return report
