"""How the console names machine verdicts, reviewer labels and evidence kinds (the stored values are slugs)."""

from __future__ import annotations

import html
from typing import Any

LABEL_NAMES = {
    "ai-generated": "AI-generated",
    "likely-real": "likely real",
    "needs-review": "needs review",
    "real": "real",
    "unsure": "unsure",
}

EVIDENCE_KIND_NAMES = {
    "c2pa": "C2PA manifest",
    "digital_source_type": "IPTC digital source type",
    "generator_metadata": "generator metadata",
    "software": "software tag",
    "sd_watermark": "invisible watermark",
    "camera_exif": "camera EXIF",
    "known_fake_match": "match with a confirmed fake",
    "failed": "unreadable evidence",
}

# Findings whose value was cut out of an XMP packet (see detector.evidence.metadata.xmp_findings): XML text, whose
# entities (`&lt;`) must be decoded once before the template escapes it for HTML.
_XML_SOURCE_SUFFIXES = (":CreatorTool", ":Iptc4xmpExt:DigitalSourceType")


def label_name(value: str) -> str:
    return LABEL_NAMES.get(value, value)


def label_choices(values: list[str]) -> list[tuple[str, str]]:
    return [(value, label_name(value)) for value in values]


def finding_text(finding: dict[str, Any]) -> str:
    """A finding's value as the file states it (plain text, for the template to escape)."""
    value = str(finding.get("value", ""))
    return html.unescape(value) if str(finding.get("source", "")).endswith(_XML_SOURCE_SUFFIXES) else value
