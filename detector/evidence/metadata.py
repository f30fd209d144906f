"""Evidence in EXIF, XMP and generator text chunks: what a file says about its own origin."""

from __future__ import annotations

import json
import re

from PIL import Image

from .containers import Metadata
from .findings import Finding, generator_named_in, source_type_ai, source_type_code

_EXCERPT_CHARS = 500
_TAG_SOFTWARE, _TAG_MAKE, _TAG_MODEL = 0x0131, 0x010F, 0x0110
_IFD_EXIF, _TAG_USER_COMMENT = 0x8769, 0x9286
_DIGITAL_SOURCE_TYPE = re.compile(r"DigitalSourceType")
_IPTC_CODE = re.compile(r"digitalsourcetype/([A-Za-z]+)")
_BARE_CODE = re.compile(r"DigitalSourceType\s*(?:=\s*[\"']|>)\s*([A-Za-z]+)")
_CREATOR_TOOL = re.compile(r"CreatorTool\s*(?:=\s*[\"']|>)([^\"'<]{1,200})")
_A1111_STEPS = re.compile(r"(?:^|\n|, )Steps: \d+")
_WEBUI_VERSION = re.compile(r"Version: ([\w.\-]{1,40})")


def exif_findings(meta: Metadata) -> list[Finding]:
    findings: list[Finding] = []
    for _source, raw in meta.exif:
        exif = Image.Exif()
        exif.load(raw)
        findings += _software_finding(_clean(exif.get(_TAG_SOFTWARE)), "exif:Software")
        make, model = _clean(exif.get(_TAG_MAKE)), _clean(exif.get(_TAG_MODEL))
        if make or model:
            # Canon writes "Canon" / "Canon EOS 5D"; others repeat nothing, so join without doubling the brand.
            camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
            findings.append(
                Finding("camera_exif", camera, "weak", "exif:Make/Model", False, {"make": make, "model": model})
            )
        comment = _user_comment(exif.get_ifd(_IFD_EXIF).get(_TAG_USER_COMMENT))
        if comment and (generator := _generator_from_text("parameters", comment)):
            findings.append(_generator_finding(generator, "exif:UserComment", comment))
    return findings


def xmp_findings(meta: Metadata) -> list[Finding]:
    findings: list[Finding] = []
    for source, raw in meta.xmp:
        packet = raw.decode("utf-8", "replace")
        for match in _DIGITAL_SOURCE_TYPE.finditer(packet):
            window = packet[match.start() : match.start() + 300]
            code = _IPTC_CODE.search(window) or _BARE_CODE.search(window)
            if not code:
                continue
            value = source_type_code(code.group(1))
            ai = source_type_ai(value)
            # A capture claim here is as easy to forge as camera EXIF; only an AI declaration carries weight.
            strength = "strong" if ai else "weak"
            findings.append(
                Finding("digital_source_type", value, strength, f"{source}:Iptc4xmpExt:DigitalSourceType", ai)
            )
        if tool := _CREATOR_TOOL.search(packet):
            findings += _software_finding(tool.group(1).strip(), f"{source}:CreatorTool")
    return findings


def text_findings(meta: Metadata) -> list[Finding]:
    findings: list[Finding] = []
    for container, key, value in meta.text:
        source = f"{container.split(':')[0]}:{key}"
        if key == "Software":
            findings += _software_finding(value.strip(), source)
        elif generator := _generator_from_text(key, value):
            findings.append(_generator_finding(generator, source, value))
    return findings


def _generator_from_text(key: str, value: str) -> str | None:
    """The generator that writes a text chunk of this key and shape, or None."""
    if key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"):
        return "InvokeAI"
    if key == "fooocus_scheme":
        return "Fooocus"
    if key == "parameters":
        lowered = value.lower()
        if "sui_image_params" in lowered:
            return "SwarmUI"
        if "fooocus" in lowered:
            return "Fooocus"
        if _A1111_STEPS.search(value):
            return "AUTOMATIC1111"
        return None
    if key in ("prompt", "workflow", "Comment"):
        parsed = _json_object(value)
        if parsed is None:
            return None
        if key == "prompt" and any(isinstance(node, dict) and "class_type" in node for node in parsed.values()):
            return "ComfyUI"
        if key == "workflow" and isinstance(parsed.get("nodes"), list):
            return "ComfyUI"
        # NovelAI's Comment JSON: sampling settings plus "uc", its name for the negative prompt.
        if key == "Comment" and {"steps", "sampler", "uc"} <= parsed.keys():
            return "NovelAI"
    return None


def _generator_finding(generator: str, source: str, text: str) -> Finding:
    detail: dict = {"excerpt": text[:_EXCERPT_CHARS]}
    if generator == "AUTOMATIC1111" and (version := _WEBUI_VERSION.search(text)):
        detail["webui_version"] = version.group(1)
    return Finding("generator_metadata", generator, "strong", source, True, detail)


def _software_finding(software: str, source: str) -> list[Finding]:
    if not software:
        return []
    software = software[:200]
    if generator := generator_named_in(software):
        return [Finding("software", software, "strong", source, True, {"generator": generator})]
    return [Finding("software", software, "weak", source, None)]


def _json_object(text: str) -> dict | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # hostile nesting depth is a RecursionError, not a ValueError
        return None
    return parsed if isinstance(parsed, dict) else None


def _user_comment(raw: object) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then text (A1111 writes UTF-16 here for JPEG and WebP)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes) or len(raw) <= 8:
        return ""
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        return body.decode("utf-16-be" if body[:1] == b"\x00" else "utf-16-le", "replace")
    return body.decode("utf-8", "replace")


def _clean(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.replace("\x00", "").strip()[:200] if isinstance(value, str) else ""
