"""C2PA manifests, read and validated with c2pa-python, offline.

Trust is asymmetric on purpose. A declaration of AI generation is strong evidence even when its signer is unknown
(nobody forges an AI label to evade an AI detector), and decisive when the signer chains to a trusted anchor. A
declaration of camera capture is what an evader would forge, so it only counts (decisively) when trusted; signed by
an unknown certificate it is as weak as camera EXIF.
"""

from __future__ import annotations

import io
import json

import c2pa

from .findings import Finding, Strength, failed, generator_named_in, source_type_ai, source_type_code

_TRUSTED = "Trusted"


def c2pa_findings(data: bytes, mime: str, *, trust_anchors: str | None) -> list[Finding]:
    # Never touch the network while reading an upload: no remote manifests, no OCSP.
    settings: dict = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors}
    try:
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
            if reader is None:
                return []
            with reader:
                store = json.loads(reader.json())
                state = reader.get_validation_state() or "Invalid"
    except c2pa.C2paError as exc:
        return [failed("c2pa", f"unreadable manifest: {exc}")]

    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    detail = {"claim_generator": _claim_generator(active), "validation_state": state}
    failures = [
        item.get("code") for item in store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
    ]
    if failures:
        detail["failures"] = failures[:5]

    source_types = _source_types(store)
    # A capture later composited with AI (generative fill over a photo) is an AI image, not a conflict: once the
    # chain itself declares AI, its capture claims no longer vouch for the pixels.
    chain_declares_ai = any(source_type_ai(code) for code in source_types)
    findings = [
        Finding(
            "c2pa",
            code,
            "weak" if ai is False and chain_declares_ai else _strength(ai, state),
            "c2pa:actions",
            ai,
            {**detail, "action": action},
        )
        for code, action in source_types.items()
        for ai in [source_type_ai(code)]
    ]
    if not any(finding.ai for finding in findings) and (generator := generator_named_in(detail["claim_generator"])):
        # Some generators sign without a digitalSourceType; their own name in the claim still declares AI.
        findings.append(
            Finding(
                "c2pa",
                detail["claim_generator"],
                _strength(True, state),
                "c2pa:claim_generator",
                True,
                {**detail, "generator": generator},
            )
        )
    if not findings:
        findings.append(
            Finding("c2pa", detail["claim_generator"] or "manifest", "weak", "c2pa:claim_generator", None, detail)
        )
    return findings


def _strength(ai: bool | None, state: str) -> Strength:
    if ai is None:
        return "weak"
    if state == _TRUSTED:
        return "decisive"
    return "strong" if ai else "weak"


def _source_types(store: dict) -> dict[str, str]:
    """Every digitalSourceType in every manifest of the store (an edit's ingredients keep theirs), with its action."""
    found: dict[str, str] = {}
    for manifest in store.get("manifests", {}).values():
        for assertion in manifest.get("assertions", []):
            if not str(assertion.get("label", "")).startswith("c2pa.actions"):
                continue
            for action in (assertion.get("data") or {}).get("actions", []):
                uri = action.get("digitalSourceType") if isinstance(action, dict) else None
                if isinstance(uri, str) and uri:
                    found.setdefault(source_type_code(uri), str(action.get("action", "")))
    return found


def _claim_generator(manifest: dict) -> str:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        return " ".join(str(info[0][key]) for key in ("name", "version") if info[0].get(key))[:200]
    return str(manifest.get("claim_generator") or "")[:200]
