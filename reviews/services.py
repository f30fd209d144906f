"""Moderator decisions: claims, single and bulk decisions, and the console's roles.

A decision is the label retraining learns from and the correction a platform receives, so each one writes the
`ReviewDecision`, replaces the verdict tags, records an audit event and queues an `upload.reviewed` callback, all in
one transaction.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from callbacks.tasks import callback_enqueue
from compliance.models import StatementKind
from compliance.services import (
    appeal_check_four_eyes,
    appeal_decide,
    appeal_open_for,
    policy_for,
    reason_for,
    statement_issue,
)
from hashbank.services import (
    KNOWN_FAKE_EVIDENCE,
    KNOWN_FAKE_TAG,
    evidence_in_force,
    hash_bank_add_confirmed_fake,
    hash_bank_remove_overturned,
)
from moderation.conf import app_setting
from moderation.errors import ApplicationError
from moderation.models import Platform, Upload, UploadStatus, VerdictLabel
from moderation.services import Actor, AuditAction, audit_record, upload_transition
from reviews.models import ReviewClaim, ReviewDecision, ReviewLabel
from scanning import rescans
from scanning.models import Tag, TagSource
from scanning.payloads import upload_payload
from scanning.tasks import known_fake_matches_withdraw, retro_scan_start

logger = logging.getLogger(__name__)

# Tags that state a verdict; a reviewer's decision replaces all of them with its own.
VERDICT_TAGS = {VerdictLabel.AI_GENERATED, VerdictLabel.LIKELY_REAL, VerdictLabel.NEEDS_REVIEW, "real"}
# What an audit event lists before and after a decision: the verdict tags and the known-fake claim it may overrule.
DECIDED_TAGS = VERDICT_TAGS | {KNOWN_FAKE_TAG}
REVIEWER_TAG = {ReviewLabel.AI_GENERATED: "ai-generated", ReviewLabel.REAL: "real"}
REVIEWABLE_STATUSES = {UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW, UploadStatus.REVIEWED}

# The apps whose models carry the console's permissions (a host's own apps may reuse the codenames).
CONSOLE_PERMISSION_APPS = ["moderation", "reviews", "callbacks", "registry"]
# Console roles (Django groups) and the permissions each holds. Admins are these plus Django's superuser.
CONSOLE_ROLES: dict[str, list[str]] = {
    "moderator": ["review_upload"],
    "lead": [
        "review_upload",
        "review_bulk",
        "view_all_platforms",
        "view_review_stats",
        "view_audit_log",
        "change_platform_thresholds",
    ],
    "admin": [
        "review_upload",
        "review_bulk",
        "view_all_platforms",
        "view_review_stats",
        "view_audit_log",
        "change_platform_thresholds",
        "view_callbackdelivery",
        "change_modelversion",
    ],
}


class ClaimConflict(ApplicationError):
    def __init__(self, claim: ReviewClaim) -> None:
        super().__init__(
            f"{claim.reviewer} is reviewing this upload until {claim.expires_at:%H:%M:%S}",
            code="claimed",
            status=409,
            extra={"claimed_by": str(claim.reviewer), "expires_at": claim.expires_at.isoformat()},
        )
        self.claim = claim


def console_roles_ensure(**_: Any) -> None:
    """Create or update the role groups (run after every migrate, so new permissions reach existing roles)."""
    from django.contrib.auth.models import Group, Permission

    for role, codenames in CONSOLE_ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(codename__in=codenames, content_type__app_label__in=CONSOLE_PERMISSION_APPS)
        )


def _active_claim(upload: Upload) -> ReviewClaim | None:
    claim = ReviewClaim.objects.select_for_update(of=("self",)).select_related("reviewer").filter(upload=upload).first()
    if claim is not None and claim.expires_at <= timezone.now():
        claim.delete()
        return None
    return claim


@transaction.atomic
def review_claim(*, upload: Upload, reviewer: Any) -> ReviewClaim:
    """Hold an upload for `CONSOLE_CLAIM_SECONDS` (renewed on each call by the same reviewer); raises ClaimConflict
    while someone else holds it."""
    Upload.objects.select_for_update().filter(pk=upload.pk).exists()  # serialise claims on one upload
    claim = _active_claim(upload)
    if claim is not None and claim.reviewer_id != reviewer.pk:
        raise ClaimConflict(claim)
    expires_at = timezone.now() + timedelta(seconds=app_setting("CONSOLE_CLAIM_SECONDS"))
    claim, _ = ReviewClaim.objects.update_or_create(
        upload=upload, defaults={"reviewer": reviewer, "expires_at": expires_at}
    )
    return claim


def review_release(*, upload: Upload, reviewer: Any) -> None:
    ReviewClaim.objects.filter(upload=upload, reviewer=reviewer).delete()


def _decided_tags(upload: Upload) -> list[str]:
    return sorted(Tag.objects.filter(upload=upload, name__in=DECIDED_TAGS).values_list("name", flat=True))


def _known_fake_findings(upload: Upload) -> list[dict[str, Any]]:
    return [finding for finding in upload.evidence if finding.get("kind") == KNOWN_FAKE_EVIDENCE]


def _known_fake_resolve(upload: Upload, decision: ReviewDecision) -> None:
    """Keep the known-fake claim in step with the reviewer: `real` overrules every match (the tag goes, each finding
    stays on record naming the decision that overruled it); a later `ai-generated` upholds them again."""
    # A match whose confirmed fake was overturned since stays withdrawn whatever this reviewer decides.
    findings = [finding for finding in _known_fake_findings(upload) if not finding["detail"].get("withdrawn")]
    if not findings:
        return
    overruled = decision.pk if decision.label == ReviewLabel.REAL else None
    for finding in findings:
        if overruled:
            finding["detail"]["overruled_by_decision"] = overruled
        else:
            finding["detail"].pop("overruled_by_decision", None)
    upload.save(update_fields=["evidence", "updated_at"])
    if overruled:
        Tag.objects.filter(upload=upload, name=KNOWN_FAKE_TAG).delete()
    else:
        Tag.objects.get_or_create(upload=upload, name=KNOWN_FAKE_TAG, defaults={"source": TagSource.PROVENANCE})


def _known_fake_unresolved(upload: Upload) -> bool:
    """Whether the upload matches a confirmed fake that no reviewer has overruled (and that is still confirmed)."""
    return any(finding.get("kind") == KNOWN_FAKE_EVIDENCE for finding in evidence_in_force(upload.evidence))


def _matches_withdraw(entry_ids: list[int]) -> None:
    try:
        known_fake_matches_withdraw.delay(entry_ids)
    except Exception:  # the broker is down: here and now, rather than never
        logger.warning("withdrawing %d bank entries' matches in the request: broker unreachable", len(entry_ids))
        rescans.known_fake_matches_withdraw(entry_ids=entry_ids)


@transaction.atomic
def review_decide(
    *,
    upload: Upload,
    reviewer: Any,
    label: str,
    note: str = "",
    overrule_known_fake: bool = False,
    reason_code: str = "",
) -> ReviewDecision:
    """Record a moderator's label. `unsure` is a skip: recorded and audited, tags and status unchanged.

    `reason_code` is one of the platform's policy reasons (its first when not given); it goes into the statement of
    reasons that an `ai-generated` decision (or a `real` one that lifts a restriction) issues.

    `real` on an upload that matches a confirmed fake contradicts the hash bank, so it needs `overrule_known_fake`;
    it then overrules the match (see `_known_fake_resolve`).

    Raises ClaimConflict if another moderator holds the upload, and ApplicationError if it has no verdict yet or
    the known-fake match is not overruled.
    """
    if label not in ReviewLabel.values:
        raise ApplicationError(f"unknown label {label!r}", code="invalid_label")
    upload = Upload.objects.select_for_update(of=("self",)).select_related("platform").get(pk=upload.pk)
    claim = _active_claim(upload)
    if claim is not None and claim.reviewer_id != reviewer.pk:
        raise ClaimConflict(claim)
    if upload.status not in REVIEWABLE_STATUSES:
        raise ApplicationError(f"upload is {upload.status}; only scanned uploads can be reviewed", code="not_scanned")
    if label == ReviewLabel.REAL and not overrule_known_fake and _known_fake_unresolved(upload):
        raise ApplicationError(
            "this upload matches a confirmed fake: compare them and confirm that you overrule the match to decide real",
            code="known_fake_match",
        )

    appeal = appeal_open_for(upload)
    if appeal is not None and label != ReviewLabel.UNSURE:
        appeal_check_four_eyes(appeal=appeal, reviewer=reviewer)
    if reason_code:
        try:
            reason_for(policy_for(upload.platform), reason_code)
        except ValueError as exc:
            raise ApplicationError(str(exc), code="invalid_reason_code") from None
    decision = ReviewDecision.objects.create(
        upload=upload, reviewer=reviewer, label=label, note=note[:2000], reason_code=reason_code
    )
    before = {"status": upload.status, "tags": _decided_tags(upload)}
    if label != ReviewLabel.UNSURE:
        Tag.objects.filter(upload=upload, name__in=VERDICT_TAGS).delete()
        Tag.objects.create(upload=upload, name=REVIEWER_TAG[label], source=TagSource.REVIEWER)
        if upload.status != UploadStatus.REVIEWED:
            upload_transition(upload=upload, to=UploadStatus.REVIEWED, reason=f"reviewed {label}", acting_user=reviewer)
        _known_fake_resolve(upload, decision)
    after = {"status": upload.status, "tags": _decided_tags(upload)}
    audit_record(
        actor=reviewer,
        platform=upload.platform,
        action=AuditAction.UPLOAD_REVIEWED if label != ReviewLabel.UNSURE else AuditAction.UPLOAD_REVIEW_SKIPPED,
        obj=upload,
        data={
            "label": label,
            "note": decision.note,
            "machine_verdict": upload.scan_verdict,
            "from": before,
            "to": after,
        },
    )
    if claim is not None:
        claim.delete()
    if label == ReviewLabel.AI_GENERATED:
        entries = hash_bank_add_confirmed_fake(upload=upload, decision=decision, acting_user=reviewer)
        if entries:  # look back for earlier copies, after commit
            retro_scan_start(platform=upload.platform, entries=entries, acting_user=reviewer)
    elif label == ReviewLabel.REAL:
        if removed := hash_bank_remove_overturned(upload=upload, acting_user=reviewer):
            # The copies its hashes flagged lose that match, after commit, on the batch-job queue.
            transaction.on_commit(lambda: _matches_withdraw(removed), robust=True)
    if label != ReviewLabel.UNSURE:
        if appeal is not None:
            # The appeal's outcome, with its own statement of reasons (upheld: the restriction stays; reversed: lifted).
            appeal_decide(
                appeal=appeal, reviewer=reviewer, upheld=label == ReviewLabel.AI_GENERATED, reason_code=reason_code
            )
            callback_enqueue(upload=upload, event_type="upload.appeal_decided", payload=upload_payload)
            return decision
        # The statement of reasons: a restriction a moderator decided, or the lifting of one in force.
        machine_said_ai = upload.scan_verdict == VerdictLabel.AI_GENERATED
        confirmed = (label == ReviewLabel.AI_GENERATED) == machine_said_ai
        statement_issue(
            upload=upload,
            kind=StatementKind.REVIEWER_CONFIRMED if confirmed else StatementKind.REVIEWER_OVERTURNED,
            restricts=label == ReviewLabel.AI_GENERATED,
            decided_by=reviewer.get_username(),
            reason_code=reason_code,
            decided_at=decision.created_at,
        )
        callback_enqueue(upload=upload, event_type="upload.reviewed", payload=upload_payload)
    return decision


@dataclass
class BulkOutcome:
    decided: list[Upload] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # upload id → why


def reviews_decide_bulk(
    *, uploads: list[Upload], reviewer: Any, label: str, note: str = "", reason_code: str = ""
) -> BulkOutcome:
    """Decide each upload in its own transaction; one held by someone else, not yet scanned, or matching a confirmed
    fake that `real` would overrule (that takes a look at the pair, on its own page), is skipped with its reason
    rather than failing the rest."""
    outcome = BulkOutcome()
    for upload in uploads:
        try:
            review_decide(upload=upload, reviewer=reviewer, label=label, note=note, reason_code=reason_code)
        except ApplicationError as exc:
            outcome.skipped[str(upload.pk)] = exc.message
        else:
            outcome.decided.append(upload)
    return outcome


@transaction.atomic
def platform_thresholds_update(
    *, platform: Platform, ai_threshold: float | None, review_margin: float, acting_user: Actor
) -> Platform:
    """A lead's change of a platform's operating point; applies to scans from now on. A threshold set here is pinned:
    the daily calibration no longer replaces it (a blank one, the model's own, unpins it)."""
    before = {"ai_threshold": platform.ai_threshold, "review_margin": platform.review_margin}
    platform.ai_threshold, platform.review_margin = ai_threshold, review_margin
    platform.ai_threshold_pinned = ai_threshold is not None
    platform.full_clean(exclude=["api_token_hash", "webhook_secrets", "moderators"])
    platform.save(update_fields=["ai_threshold", "ai_threshold_pinned", "review_margin"])
    audit_record(
        actor=acting_user,
        platform=platform,
        action=AuditAction.PLATFORM_THRESHOLDS_CHANGED,
        obj=platform,
        data={"from": before, "to": {"ai_threshold": ai_threshold, "review_margin": review_margin}},
    )
    return platform


@transaction.atomic
def console_user_set(*, username: str, role: str, platforms: list[Platform], acting_user: Actor) -> tuple[Any, str]:
    """Create a console user (or reset an existing one's password) with one role and its assigned platforms.
    Returns (user, password); the password is generated and shown once."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    if role not in CONSOLE_ROLES:
        raise ApplicationError(f"unknown role {role!r}; one of {', '.join(CONSOLE_ROLES)}", code="invalid_role")
    password = secrets.token_urlsafe(12)
    user, created = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = role == "admin"  # the Django admin (model versions, callback deliveries) lets in staff only
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    user.moderated_platforms.set(platforms)
    audit_record(
        actor=acting_user,
        platform=None,
        action=AuditAction.CONSOLE_USER_CREATED if created else AuditAction.CONSOLE_USER_RESET,
        obj=user,
        data={"role": role, "platforms": sorted(p.slug for p in platforms)},
    )
    return user, password
