"""Evidence beyond pixels: what an image's own bytes say about where it came from.

`extract_evidence` reads C2PA manifests, IPTC/XMP digital source types, EXIF, generator text chunks and Stable
Diffusion's invisible watermark from the original upload bytes. Every extractor runs on its own: one that cannot
read its part of a file adds a `failed` finding with the reason and the others carry on; nothing here raises on
hostile or broken input. Metadata is read from the container without decoding pixels; only the watermark check
decodes them, and only for images of at most `watermark.MAX_PIXELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from . import containers, manifest, metadata, watermark
from .findings import Finding, Strength, failed

__all__ = ["Finding", "Provenance", "Strength", "extract_evidence", "provenance"]

Provenance = Literal["ai-declared", "camera-declared", "conflict", "none"]


def extract_evidence(
    data: bytes, *, max_metadata_bytes: int = 1_000_000, c2pa_trust_anchors: str | None = None
) -> list[Finding]:
    """All findings for one upload, in extractor order (container, EXIF, XMP, text chunks, C2PA, watermark).

    `max_metadata_bytes` caps any one metadata block (and a PNG's text in total, and a C2PA manifest store);
    larger ones give a `failed` finding instead of being read. `c2pa_trust_anchors` is a PEM bundle of extra root
    certificates whose C2PA signatures count as trusted (what makes a manifest's claims decisive).
    """
    mime = containers.sniff_mime(data)
    if mime is None:
        return [failed("container", "not a recognised image format")]
    try:
        meta = containers.read_metadata(data, mime, max_bytes=max_metadata_bytes)
    except Exception as exc:  # a container Pillow cannot even open (HEIC without the plugin, a broken TIFF...)
        meta = containers.Metadata(mime=mime, problems=[failed("container", f"{type(exc).__name__}: {exc}")])
    findings = list(meta.problems)
    for source, extractor in (
        ("exif", metadata.exif_findings),
        ("xmp", metadata.xmp_findings),
        ("text", metadata.text_findings),
    ):
        findings += _run(source, lambda extractor=extractor: extractor(meta))
    findings += _c2pa(data, meta, max_metadata_bytes, c2pa_trust_anchors)
    findings += _run("watermark", lambda: watermark.sd_watermark_findings(data))
    return _deduplicated(findings)


def provenance(findings: list[Finding]) -> Provenance:
    """What the evidence declares on its own, before any pixel score.

    "ai-declared": a decisive or strong finding points to AI (and no decisive one to a camera); "camera-declared":
    a decisive camera capture (a trusted C2PA manifest) and nothing strong for AI; "conflict": both; else "none".
    Camera EXIF and untrusted capture claims are weak, so they never clear an image.
    """
    declared_ai = any(finding.ai is True and finding.strength in ("decisive", "strong") for finding in findings)
    declared_camera = any(finding.ai is False and finding.strength == "decisive" for finding in findings)
    if declared_ai and declared_camera:
        return "conflict"
    if declared_ai:
        return "ai-declared"
    if declared_camera:
        return "camera-declared"
    return "none"


def _run(source: str, extract: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one extractor; any exception (third-party parsers meet hostile bytes here) becomes a `failed` finding."""
    try:
        return extract()
    except Exception as exc:  # an upload must never crash the pipeline
        return [failed(source, f"{type(exc).__name__}: {exc}")]


def _c2pa(data: bytes, meta: containers.Metadata, limit: int, trust_anchors: str | None) -> list[Finding]:
    # Every embedded manifest store is a JUMBF box labelled "c2pa": without the label there is nothing to read, and
    # the common case skips the reader entirely.
    if b"c2pa" not in data:
        return []
    if meta.jumbf_bytes > limit:
        return [failed("c2pa", "manifest store over the size limit", store_bytes=meta.jumbf_bytes, limit=limit)]
    return _run("c2pa", lambda: manifest.c2pa_findings(data, meta.mime, trust_anchors=trust_anchors))


def _deduplicated(findings: list[Finding]) -> list[Finding]:
    """One finding per (kind, value, source): two EXIF blocks or repeated XMP packets say the same thing once."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.kind, finding.value, finding.source)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
