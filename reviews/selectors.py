"""The console's reads, scoped to what the asking user may see (deny by default): the platforms and uploads they
may review, the review queue, known-fake matches, failed uploads, statistics, retro scans and the audit log."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from compliance.models import Appeal, AppealStatus
from hashbank.models import HashBankEntry, RetroScan
from hashbank.services import KNOWN_FAKE_EVIDENCE
from moderation.models import AuditEvent, Platform, Upload, UploadStatus, VerdictLabel
from reviews.models import ReviewDecision, ReviewLabel
from scanning.models import Scan


def latest_label_decisions(uploads: QuerySet[Upload] | None = None) -> QuerySet[ReviewDecision]:
    """Each upload's latest decision that labels it AI or real (of `uploads`, or of every upload): an `unsure` skip
    after it changes nothing, neither the label retraining learns nor the one calibration and statistics read."""
    labelling = ReviewDecision.objects.filter(label__in=[ReviewLabel.AI_GENERATED, ReviewLabel.REAL])
    if uploads is not None:
        labelling = labelling.filter(upload__in=uploads)
    latest = labelling.values("upload_id").annotate(last=Max("id")).values("last")
    return ReviewDecision.objects.filter(id__in=latest)


@dataclass(frozen=True)
class QueueFilters:
    platform: str = ""
    # "needs_review" (the default queue), "all" scanned uploads, or one upload status.
    status: str = UploadStatus.NEEDS_REVIEW
    verdict: str = ""
    score_min: float | None = None
    score_max: float | None = None
    date_from: date | None = None
    date_to: date | None = None
    escalated: bool | None = None


QUEUE_ORDER = ("-review_priority", "created_at", "id")


def review_queue(*, user: Any, filters: QueueFilters, skipped: Collection[Any] = ()) -> QuerySet[Upload]:
    """The uploads a user may review, highest priority first, then oldest first, leaving out those in `skipped`
    (what this moderator marked unsure, so a skip never brings the same upload straight back)."""
    queryset = uploads_visible_to(user).select_related("platform", "review_claim__reviewer")
    if skipped:
        queryset = queryset.exclude(pk__in=list(skipped))
    if filters.status == "all":
        queryset = queryset.filter(status__in=[UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW, UploadStatus.REVIEWED])
    elif filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.platform:
        queryset = queryset.filter(platform__slug=filters.platform)
    if filters.verdict:
        queryset = queryset.filter(scan_verdict=filters.verdict)
    if filters.score_min is not None:
        queryset = queryset.filter(scan_score__gte=filters.score_min)
    if filters.score_max is not None:
        queryset = queryset.filter(scan_score__lte=filters.score_max)
    if filters.date_from is not None:
        queryset = queryset.filter(created_at__date__gte=filters.date_from)
    if filters.date_to is not None:
        queryset = queryset.filter(created_at__date__lte=filters.date_to)
    if filters.escalated is not None:
        queryset = queryset.filter(scan_escalated=filters.escalated)
    # An open appeal's deadline, for the queue's appeal badge (appealed uploads also lead the queue by priority).
    open_appeals = Appeal.objects.filter(upload=OuterRef("pk"), status=AppealStatus.OPEN)
    queryset = queryset.annotate(appeal_due_at=Subquery(open_appeals.values("due_at")[:1]))
    return queryset.order_by(*QUEUE_ORDER)


def queue_after(queryset: QuerySet[Upload], upload: Upload) -> QuerySet[Upload]:
    """Keyset paging: the queue entries that come after `upload`, without OFFSET (fast on any page of 100k)."""
    priority, created_at = upload.review_priority, upload.created_at
    return queryset.filter(
        Q(review_priority__lt=priority)
        | Q(review_priority=priority, created_at__gt=created_at)
        | Q(review_priority=priority, created_at=created_at, id__gt=upload.id)
    )


def queue_before(queryset: QuerySet[Upload], upload: Upload) -> QuerySet[Upload]:
    """The queue entries before `upload`, nearest first."""
    priority, created_at = upload.review_priority, upload.created_at
    return queryset.filter(
        Q(review_priority__gt=priority)
        | Q(review_priority=priority, created_at__lt=created_at)
        | Q(review_priority=priority, created_at=created_at, id__lt=upload.id)
    ).order_by("review_priority", "-created_at", "-id")


def queue_next_for(queryset: QuerySet[Upload], *, user: Any, after: Upload | None) -> Upload | None:
    """The next upload this user can take: after `after` in queue order and not held by someone else."""
    if after is not None:
        queryset = queue_after(queryset, after)
    held_by_others = Q(review_claim__expires_at__gt=timezone.now()) & ~Q(review_claim__reviewer=user)
    return queryset.exclude(held_by_others).first()


def upload_visible(*, user: Any, upload_id: Any) -> Upload | None:
    """The upload alone, or None when the user may not see it."""
    return uploads_visible_to(user).filter(id=upload_id).first()


def upload_for_review(*, user: Any, upload_id: Any) -> Upload | None:
    """One upload with everything the item page shows, or None when the user may not see it (a 404, not a 403: no
    hint that another platform's upload exists)."""
    return (
        uploads_visible_to(user)
        .select_related("platform", "review_claim__reviewer")
        .prefetch_related(
            "tags",
            Prefetch("scans", queryset=Scan.objects.order_by("-created_at"), to_attr="scans_newest_first"),
            Prefetch(
                "review_decisions",
                queryset=ReviewDecision.objects.select_related("reviewer").order_by("-created_at"),
                to_attr="decisions_newest_first",
            ),
        )
        .filter(id=upload_id)
        .first()
    )


def failed_uploads(*, user: Any, platform: str = "") -> QuerySet[Upload]:
    """Uploads that failed for good, newest first, within the platforms the user may see."""
    queryset = uploads_visible_to(user).filter(status=UploadStatus.FAILED).select_related("platform")
    if platform:
        queryset = queryset.filter(platform__slug=platform)
    return queryset.order_by("-created_at", "-id")


def failed_after(queryset: QuerySet[Upload], upload: Upload) -> QuerySet[Upload]:
    """Keyset paging through `failed_uploads`: what comes after `upload` (older), without OFFSET."""
    return queryset.filter(Q(created_at__lt=upload.created_at) | Q(created_at=upload.created_at, id__lt=upload.id))


@dataclass(frozen=True)
class ReviewStats:
    days: int
    # (day, uploads, scanned, auto-tagged, escalated)
    per_day: list[tuple[date, int, int, int, int]]
    scanned: int
    auto_tagged: int
    escalated: int
    reviewed: int
    # model version → (reviewed auto-tags, overturned)
    overturns_by_model: dict[str, tuple[int, int]]
    # Reviewed-as-real uploads, and how many of them the machine had tagged ai-generated.
    real_reviewed: int
    real_flagged_ai: int

    @property
    def auto_tag_rate(self) -> float | None:
        return self.auto_tagged / self.scanned if self.scanned else None

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.scanned if self.scanned else None

    @property
    def estimated_fpr(self) -> float | None:
        return self.real_flagged_ai / self.real_reviewed if self.real_reviewed else None


def review_stats(*, user: Any, days: int = 30, platform: str = "") -> ReviewStats:
    """Aggregates for the stats page; each is one indexed query over the uploads the user may see."""
    uploads = uploads_visible_to(user)
    if platform:
        uploads = uploads.filter(platform__slug=platform)
    since = timezone.now() - timedelta(days=days)
    recent = uploads.filter(created_at__gte=since)
    scanned = ~Q(scan_verdict="")
    per_day = (
        recent.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            n=Count("id"),
            scanned=Count("id", filter=scanned),
            auto_tagged=Count(
                "id", filter=scanned & Q(scan_verdict__in=[VerdictLabel.AI_GENERATED, VerdictLabel.LIKELY_REAL])
            ),
            escalated=Count("id", filter=scanned & Q(scan_escalated=True)),
        )
        .order_by("day")
    )
    totals = recent.exclude(scan_verdict="").aggregate(
        scanned=Count("id"),
        auto_tagged=Count("id", filter=Q(scan_verdict__in=[VerdictLabel.AI_GENERATED, VerdictLabel.LIKELY_REAL])),
        escalated=Count("id", filter=Q(scan_escalated=True)),
        reviewed=Count("id", filter=Q(status=UploadStatus.REVIEWED)),
    )
    # Each reviewed upload's latest decision, against the machine verdict it confirmed or overturned.
    decided = latest_label_decisions(recent).values_list("label", "upload__scan_verdict", "upload__scan_model_version")
    overturns: dict[str, list[int]] = {}
    real_reviewed = real_flagged_ai = 0
    for label, machine_verdict, model_version in decided:
        if label == ReviewLabel.REAL:
            real_reviewed += 1
            real_flagged_ai += machine_verdict == VerdictLabel.AI_GENERATED
        if machine_verdict in (VerdictLabel.AI_GENERATED, VerdictLabel.LIKELY_REAL):
            counts = overturns.setdefault(model_version or "unknown", [0, 0])
            counts[0] += 1
            counts[1] += (label == ReviewLabel.AI_GENERATED) != (machine_verdict == VerdictLabel.AI_GENERATED)
    return ReviewStats(
        days=days,
        per_day=[(row["day"], row["n"], row["scanned"], row["auto_tagged"], row["escalated"]) for row in per_day],
        scanned=totals["scanned"],
        auto_tagged=totals["auto_tagged"],
        escalated=totals["escalated"],
        reviewed=totals["reviewed"],
        overturns_by_model={version: (n, k) for version, (n, k) in sorted(overturns.items())},
        real_reviewed=real_reviewed,
        real_flagged_ai=real_flagged_ai,
    )


def platforms_visible_to(user: Any) -> QuerySet[Platform]:
    """Leads and admins see every platform; a moderator only those assigned to them; anyone else none."""
    if user.has_perm("reviews.view_all_platforms"):
        return Platform.objects.all()
    if user.has_perm("reviews.review_upload"):
        return Platform.objects.filter(moderators=user)
    return Platform.objects.none()


def uploads_visible_to(user: Any) -> QuerySet[Upload]:
    if user.has_perm("reviews.view_all_platforms"):
        return Upload.objects.all()
    return Upload.objects.filter(platform_id__in=list(platforms_visible_to(user).values_list("id", flat=True)))


def audit_events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    queryset = AuditEvent.objects.select_related("actor", "platform").order_by("-id")
    if user.has_perm("reviews.view_all_platforms"):
        return queryset
    return queryset.filter(platform__in=platforms_visible_to(user))


@dataclass(frozen=True)
class KnownFakeMatch:
    distance: int
    # The confirmed fake it matched, where this user may see it; a shared-bank match or an imported hash names none.
    original: Upload | None
    # Set once a reviewer decided the upload is real: the match stays on record, overruled.
    overruled_by_decision: int | None
    # Set once the confirmed fake it matched was overturned: the match stays on record, withdrawn.
    withdrawn: bool = False


def known_fake_matches(*, user: Any, upload: Upload) -> list[KnownFakeMatch]:
    """The upload's matches with banked fakes, each with the original upload for a side-by-side look."""
    details = [finding["detail"] for finding in upload.evidence if finding.get("kind") == KNOWN_FAKE_EVIDENCE]
    if not details:
        return []
    # Evidence names the original only where it is the same platform's; evidence naming just its bank entry is
    # resolved through the entry, within the platform too (the shared bank never reveals another platform's upload).
    via_entry = dict(
        HashBankEntry.objects.filter(
            pk__in=[d["entry_id"] for d in details if d.get("entry_id") and not d.get("original_upload_id")],
            upload__platform_id=upload.platform_id,
        ).values_list("pk", "upload_id")
    )
    original_ids = [str(d.get("original_upload_id") or via_entry.get(d.get("entry_id")) or "") for d in details]
    visible = uploads_visible_to(user).filter(platform_id=upload.platform_id)
    originals = {str(pk): original for pk, original in visible.in_bulk([i for i in original_ids if i]).items()}
    return [
        KnownFakeMatch(
            distance=detail.get("distance", 0),
            original=originals.get(original_id),
            overruled_by_decision=detail.get("overruled_by_decision"),
            withdrawn=bool(detail.get("withdrawn")),
        )
        for detail, original_id in zip(details, original_ids, strict=True)
    ]


def retro_scans_visible_to(user: Any) -> QuerySet[RetroScan]:
    queryset = RetroScan.objects.select_related("platform", "created_by").order_by("-id")
    if user.has_perm("reviews.view_all_platforms"):
        return queryset
    return queryset.filter(platform__in=platforms_visible_to(user))
