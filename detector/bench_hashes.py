"""`python -m detector bench-hashes`: near-duplicate lookups against a bank of N PDQ hashes, as one JSON object."""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import numpy as np

from .hashing import DEFAULT_MATCH_DISTANCE, PDQ_BITS, HashIndex


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _flip(codes: np.ndarray, flips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(codes, axis=1)
    for row, count in zip(bits, flips, strict=True):
        row[rng.choice(PDQ_BITS, int(count), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def run_hash_bench(size: int = 1_000_000, queries: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Random 256-bit hashes stand in for the bank (PDQ bits are close to uniform over varied photos). Half the
    queries are near-duplicates of bank entries (0-31 bits flipped, as re-encodes and resizes give), half unrelated."""
    rng = np.random.default_rng(seed)
    rss_before = _rss_mb()
    bank = rng.integers(0, 256, size=(size, PDQ_BITS // 8), dtype=np.uint8)
    hexes = [row.tobytes().hex() for row in bank]
    started = time.perf_counter()
    index = HashIndex()
    index.add(list(range(size)), hexes)
    build_seconds = time.perf_counter() - started
    del hexes
    rss_index = _rss_mb() - rss_before

    sources = rng.integers(0, size, queries // 2)
    near = _flip(bank[sources], rng.integers(0, DEFAULT_MATCH_DISTANCE + 1, len(sources)), rng)
    unrelated = rng.integers(0, 256, size=(queries - len(sources), PDQ_BITS // 8), dtype=np.uint8)
    query_hexes = [row.tobytes().hex() for row in np.concatenate([near, unrelated])]

    latencies = []
    found = 0
    started = time.perf_counter()
    for position, query in enumerate(query_hexes):
        begun = time.perf_counter()
        matches = index.search([query])[0]
        latencies.append(time.perf_counter() - begun)
        if position < len(sources):
            found += any(row_id == sources[position] for row_id, _ in matches)
    single_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index.search(query_hexes)
    batch_seconds = time.perf_counter() - started
    return {
        "bank_size": size,
        "queries": len(query_hexes),
        "max_distance": DEFAULT_MATCH_DISTANCE,
        "build_seconds": round(build_seconds, 2),
        "lookups_per_second": round(len(query_hexes) / single_seconds, 1),
        "lookups_per_second_batched": round(len(query_hexes) / batch_seconds, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)) * 1000, 3),
            "p99": round(float(np.percentile(latencies, 99)) * 1000, 3),
        },
        "recall_within_max_distance": found / len(sources),
        "index_memory_mb": round(rss_index, 1),
        "process_rss_mb": round(_rss_mb(), 1),
        "cpu_count": os.cpu_count(),
        "target": {"lookups_per_second": 1000, "memory_mb": 2048},
    }
