"""Template filters for the console's display names (see `admin_ui.labels`)."""

from __future__ import annotations

from typing import Any

from django import template

from admin_ui import labels

register = template.Library()


@register.filter
def label_name(value: str) -> str:
    return labels.label_name(value)


@register.filter
def evidence_kind(value: str) -> str:
    return labels.EVIDENCE_KIND_NAMES.get(value, value)


@register.filter
def finding_text(finding: dict[str, Any]) -> str:
    return labels.finding_text(finding)
