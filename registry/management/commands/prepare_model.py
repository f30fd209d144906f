"""Load every model of the active cascade once, so workers start fast and the first upload is not kept waiting.

On the CPU that means exporting each model to ONNX (cached under DETECTOR_ONNX_CACHE_DIR, keyed by the weights): about
a minute for the shipped cascade on 2 cores the first time, under a second per model afterwards. `make run` runs this
before it starts the worker and prints "Serving"; a deployment can run it once per model version (e.g. an init
container sharing the cache volume with the workers).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from detector.cascade import CASCADE_FILENAME, CascadeSpec
from detector.checkpoint import load_checkpoint
from detector.detector import LoadedModel
from detector.device import choose_placement, placement_for
from detector.onnx_scorer import default_cache_dir
from moderation.conf import app_setting
from registry.services import model_version_ensure_default


def _cascade_parts(root: Path) -> list[tuple[str, Path]]:
    if not (root / CASCADE_FILENAME).is_file():
        return [("model", root)]
    spec = CascadeSpec.load(root)
    parts = [("screen", root / spec.cnn), ("vit", root / spec.vit)]
    if spec.thumbnail:
        parts.append(("thumbnail", root / spec.thumbnail))
    return parts


class Command(BaseCommand):
    help = (
        "Load each model of the active version once: on the CPU this exports it to ONNX Runtime's format (cached), "
        "so workers load it in about a second. One line per model."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        version = model_version_ensure_default()
        placement = choose_placement(app_setting("DETECTOR_DEVICE"), app_setting("DETECTOR_CPU_RUNTIME"))
        cache_dir = Path(app_setting("DETECTOR_ONNX_CACHE_DIR") or default_cache_dir())
        parts = _cascade_parts(version.checkpoint_dir)
        where = f"ONNX Runtime, cache {cache_dir}" if placement.runtime == "onnxruntime" else str(placement.device)
        self.stdout.write(f"Preparing model {version.name}@{version.version} ({len(parts)} networks, {where})")
        started = time.perf_counter()
        for role, directory in parts:
            self.stdout.write(f"  {role:<9} {directory.name:<8} ", ending="")
            self.stdout.flush()
            part_started = time.perf_counter()
            module, card = load_checkpoint(directory)
            own = placement_for(module, placement, app_setting("DETECTOR_CPU_RUNTIME"))
            onnx = own.runtime == "onnxruntime"
            before = set(cache_dir.glob("*.onnx")) if onnx else set()
            LoadedModel(module, card, own, onnx_cache_dir=cache_dir if onnx else None)
            exported = onnx and bool(set(cache_dir.glob("*.onnx")) - before)
            how = "exported to ONNX" if exported else ("ONNX export cached" if onnx else f"loaded ({own.describe()})")
            self.stdout.write(f"{card.name}@{card.version}: {how} in {time.perf_counter() - part_started:.1f} s")
        self.stdout.write(f"Model ready in {time.perf_counter() - started:.1f} s")
