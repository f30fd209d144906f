"""Reads of uploads with their results (scans, tags, decisions), and what decided a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from compliance.models import Appeal, StatementOfReasons
from moderation.models import Platform, Upload
from scanning.models import Scan, TagSource

from .policy import decide, evidence_provenance


def _with_results(queryset: QuerySet[Upload]) -> QuerySet[Upload]:
    # Moderators' decisions (the reviews app, above this one) reached through the upload's reverse relation.
    decisions = Upload._meta.get_field("review_decisions").related_model.objects
    return queryset.prefetch_related(
        "tags",
        Prefetch("scans", queryset=Scan.objects.order_by("-created_at"), to_attr="scans_newest_first"),
        Prefetch(
            "review_decisions",
            queryset=decisions.exclude(label="unsure").order_by("-created_at", "-id"),
            to_attr="decisions_newest_first",
        ),
        Prefetch(
            "statements",
            queryset=StatementOfReasons.objects.order_by("-version"),
            to_attr="statements_newest_first",
        ),
        Prefetch("appeals", queryset=Appeal.objects.order_by("-received_at"), to_attr="appeals_newest_first"),
    )


def latest_scored_scan(upload: Upload) -> Scan | None:
    """The newest scan with a verdict, from an upload read with its scans (`scans_newest_first`)."""
    return next((scan for scan in getattr(upload, "scans_newest_first", []) if not scan.error), None)


def upload_get(*, platform: Platform, external_id: str) -> Upload | None:
    return _with_results(Upload.objects.filter(platform=platform, external_id=external_id)).first()


def uploads_with_results(*, ids: list[Any]) -> QuerySet[Upload]:
    """Uploads by id, with their platform and everything the lookup API shows: one query per relation for all."""
    return _with_results(Upload.objects.filter(pk__in=ids).select_related("platform"))


def upload_list(*, platform: Platform, tag: str | None = None, status: str | None = None) -> QuerySet[Upload]:
    queryset = Upload.objects.filter(platform=platform)
    if tag:
        queryset = queryset.filter(tags__name=tag)
    if status:
        queryset = queryset.filter(status=status)
    return _with_results(queryset)


@dataclass(frozen=True)
class VerdictBasis:
    # "pixels" when the score against the threshold decided the machine verdict, "provenance" when evidence did.
    decided_by: str
    # The findings that decided it (declared AI or camera capture, known-fake matches); empty for "pixels".
    findings: list[dict[str, Any]]


def scan_verdict_basis(*, upload: Upload, scan: Scan) -> VerdictBasis:
    """What decided a scan's verdict, for an upload read with its tags and platform."""
    verdict_tag = next(
        (tag for tag in upload.tags.all() if tag.name == scan.verdict and tag.source != TagSource.REVIEWER), None
    )
    if verdict_tag is not None:
        by_evidence = verdict_tag.source == TagSource.PROVENANCE
    else:
        # A reviewer's tag has replaced the verdict's: ask the policy again with what the scan saw.
        by_evidence = (
            decide(
                scan.score,
                threshold=scan.threshold,
                review_margin=upload.platform.review_margin,
                provenance=evidence_provenance(upload.evidence),
                provenance_policy=upload.platform.provenance_policy,
                detector_review_reason=scan.review_reason,
            ).source
            == TagSource.PROVENANCE
        )
    if not by_evidence:
        return VerdictBasis("pixels", [])
    deciding = [
        finding
        for finding in upload.evidence
        if finding.get("ai") is not None and finding.get("strength") in ("decisive", "strong")
    ]
    return VerdictBasis("provenance", deciding)
