"""The evidence item every extractor returns, and the vocabulary the extractors share."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal

Strength = Literal["decisive", "strong", "weak"]


@dataclass(frozen=True)
class Finding:
    """One piece of evidence about where an image came from, with where it was read and how far to trust it."""

    kind: str
    value: str
    strength: Strength
    source: str
    ai: bool | None
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def failed(source: str, reason: str, **detail: object) -> Finding:
    """An extractor that could not read its part of the file: recorded, never raised."""
    return Finding(kind="failed", value=reason[:200], strength="weak", source=source, ai=None, detail=dict(detail))


# IPTC's digital source type vocabulary (shared by C2PA actions and XMP), reduced to what it says about AI.
IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"})
CAPTURE_SOURCE_TYPES = frozenset({"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm"})


def source_type_code(uri: str) -> str:
    """`http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture` (or a bare code) → `digitalCapture`."""
    return uri.strip().rstrip("/").rsplit("/", 1)[-1]


def source_type_ai(code: str) -> bool | None:
    if code in AI_SOURCE_TYPES:
        return True
    if code in CAPTURE_SOURCE_TYPES:
        return False
    return None


# Names generators write into Software / CreatorTool / claim generator fields; matched case-insensitively.
_GENERATOR_NAMES = {
    "Stable Diffusion": r"stable[ _-]?diffusion|sdxl",
    "DALL-E": r"dall[·\-. ]?e",
    "Midjourney": r"midjourney",
    "Adobe Firefly": r"firefly",
    "ComfyUI": r"comfyui",
    "NovelAI": r"novelai",
    # Bare "imagen" is Spanish for image (e.g. an editor's name), so only the versioned or Google-prefixed form.
    "Imagen": r"google imagen|\bimagen[ -]?\d",
    "AUTOMATIC1111": r"automatic1111|stable-diffusion-webui",
    "InvokeAI": r"invokeai",
    "Fooocus": r"fooocus",
    "ChatGPT": r"chatgpt|gpt-4o|gpt-image",
    "Leonardo.Ai": r"leonardo\.ai",
    "Ideogram": r"ideogram",
    "Bing Image Creator": r"bing image creator|designer\.microsoft",
}
_GENERATOR_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _GENERATOR_NAMES.items()]


def generator_named_in(text: str) -> str | None:
    """The generator a free-text tool name refers to, or None for ordinary software."""
    for name, pattern in _GENERATOR_PATTERNS:
        if pattern.search(text):
            return name
    return None
