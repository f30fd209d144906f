"""Statements of reasons: issue one for every decision that restricts an upload (or lifts a restriction), and submit
the restricting ones to the DSA Transparency Database where a platform has turned that on."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from django.db import transaction
from django.utils import timezone

from hashbank.services import evidence_in_force
from moderation.errors import ApplicationError
from moderation.models import Platform, Upload, UploadStatus, VerdictLabel
from moderation.services import Actor, AuditAction, audit_record, upload_transition
from transport import transparency_db

from .explanations import DecisionFacts, explanation_text
from .models import (
    Appeal,
    AppealStatus,
    DecisionPolicy,
    PlatformAction,
    StatementKind,
    StatementOfReasons,
    StatementSubmission,
    SubmissionRequest,
    SubmissionStatus,
)
from .schema import statement_schema

logger = logging.getLogger(__name__)

# Transparency Database vocabulary (2025 schema) for what this service decides.
VISIBILITY = {
    PlatformAction.LABEL: "DECISION_VISIBILITY_CONTENT_LABELLED",
    PlatformAction.DEMOTE: "DECISION_VISIBILITY_CONTENT_DEMOTED",
    PlatformAction.REMOVE: "DECISION_VISIBILITY_CONTENT_REMOVED",
}
AUTOMATED_FULLY = "AUTOMATED_DECISION_FULLY"
NOT_AUTOMATED = "AUTOMATED_DECISION_NOT_AUTOMATED"
RETRY_BACKOFF_SECONDS = (60, 300, 900, 3600, 6 * 3600)
# A run claims the statements it will send by moving their next attempt this far ahead, longer than the task's hard
# time limit: a run that dies leaves its claim to lapse; one that overlaps it (beat starts one a minute) skips them.
SUBMIT_CLAIM_SECONDS = 600
SUBMIT_MAX_PER_RUN = 1000
# An appealed upload's place in the review queue: ahead of everything else (platform-flagged uploads are 1000+).
APPEAL_PRIORITY = 5000


def statement_errors(fields: dict[str, Any]) -> list[str]:
    """Where `fields` breaks the Transparency Database's statement schema (empty when it validates)."""
    validator = jsonschema.Draft202012Validator(statement_schema(), format_checker=jsonschema.FormatChecker())
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(statement)'}: {error.message}"
        for error in validator.iter_errors(fields)
    ]


def policy_for(platform: Platform) -> DecisionPolicy:
    policy, _ = DecisionPolicy.objects.get_or_create(platform=platform)
    return policy


def reason_for(policy: DecisionPolicy, code: str = "") -> dict[str, str]:
    """The reason `code` from the platform's list (the first one, which automatic decisions use, if not given)."""
    codes = policy.reason_codes or []
    for reason in codes:
        if reason.get("code") == code:
            return reason
    if code:
        raise ValueError(f"{code!r} is not one of {policy.platform}'s reason codes")
    return codes[0]


def statement_latest(upload: Upload) -> StatementOfReasons | None:
    return StatementOfReasons.objects.filter(upload=upload).order_by("-version").first()


def _restriction_start(newest_first: list[StatementOfReasons]) -> datetime | None:
    """When the restriction in force began (the first restricting version since the last lift), if one is."""
    start = None
    for statement in newest_first:
        if not statement.restricts:
            break
        start = statement.decided_at
    return start


@transaction.atomic
def statement_issue(
    *,
    upload: Upload,
    kind: str,
    restricts: bool,
    decided_by: str = "",
    reason_code: str = "",
    threshold: float | None = None,
    decided_at: datetime | None = None,
) -> StatementOfReasons | None:
    """Record the next version of `upload`'s statement of reasons, or nothing if the platform attaches no restriction
    to AI-generated uploads, or if `restricts` is false and no restriction is in force (nothing to lift).

    Raises ValueError if the statement would not validate against the Transparency Database's schema."""
    policy = policy_for(upload.platform)
    if policy.ai_generated_action == PlatformAction.NOTHING:
        return None
    versions = list(StatementOfReasons.objects.filter(upload=upload).order_by("-version"))
    started = _restriction_start(versions)
    if not restricts and started is None:
        return None
    decided_at = decided_at or timezone.now()
    version = (versions[0].version + 1) if versions else 1
    reason = reason_for(policy, reason_code)
    automated = kind == StatementKind.AUTOMATIC
    detected = automated or upload.scan_verdict in (VerdictLabel.AI_GENERATED, VerdictLabel.NEEDS_REVIEW)
    explanation = explanation_text(
        DecisionFacts(
            platform_name=upload.platform.name,
            action=policy.ai_generated_action,
            restricts=restricts,
            kind=kind,
            reason_label=reason["label"],
            evidence=evidence_in_force(upload.evidence),  # not a match overruled or withdrawn
            score=upload.scan_score,
            threshold=threshold,
            model_version=upload.scan_model_version,
        )
    )
    puid = f"{upload.pk.hex}-v{version}"
    fields: dict[str, Any] = {
        "decision_visibility": [VISIBILITY[policy.ai_generated_action]],
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": reason["ground"][:500],
        "incompatible_content_explanation": explanation[:2000],
        "incompatible_content_illegal": "No",
        "content_type": ["CONTENT_TYPE_IMAGE", "CONTENT_TYPE_SYNTHETIC_MEDIA"],
        "category": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        "category_specification": ["KEYWORD_OTHER"],
        "category_specification_other": reason["label"][:500],
        "content_date": timezone.localdate(upload.created_at).isoformat(),
        "application_date": timezone.localdate(started or decided_at).isoformat(),
        "decision_facts": explanation[:5000],
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes" if detected else "No",
        "automated_decision": AUTOMATED_FULLY if automated else NOT_AUTOMATED,
        "puid": puid,
    }
    if not restricts:
        fields["end_date_visibility_restriction"] = timezone.localdate(decided_at).isoformat()
    if policy.terms_url:
        fields["decision_ground_reference_url"] = policy.terms_url
    if policy.territorial_scope:
        fields["territorial_scope"] = sorted(policy.territorial_scope)
    problems = statement_errors(fields)
    if problems:
        raise ValueError(f"statement for {upload.pk} does not validate: {problems}")
    statement = StatementOfReasons.objects.create(
        upload=upload,
        platform=upload.platform,
        version=version,
        kind=kind,
        restricts=restricts,
        puid=puid,
        reason_code=reason["code"],
        decision_visibility=fields["decision_visibility"][0],
        automated_decision=fields["automated_decision"],
        automated_detection=detected,
        decided_by=decided_by,
        decided_at=decided_at,
        fields=fields,
        explanation=explanation,
    )
    # The database records restrictions; a lift reaches the user through the platform (the callback).
    if restricts and policy.transparency_db_enabled:
        StatementSubmission.objects.create(statement=statement, next_attempt_at=decided_at)
    return statement


def statements_submit(*, platform: Platform, now: datetime | None = None, batch_size: int = 100) -> dict[str, int]:
    """Send the platform's due statements to the Transparency Database in batches; returns counts by outcome.

    Duplicates (already there: an earlier attempt went through) are marked so and never sent again; statements the
    database refuses as invalid are dead-lettered with its reason while the rest of their batch is sent again; no
    answer, 429, 5xx or a refused token leave the batch pending with a growing delay. A run takes at most
    SUBMIT_MAX_PER_RUN statements, claimed so that overlapping runs never share one."""
    now = now or timezone.now()
    policy = policy_for(platform)
    counts = {"submitted": 0, "duplicate": 0, "dead": 0, "retry_later": 0}
    if not policy.transparency_db_enabled:
        return counts
    due = _submissions_claim(platform=platform, now=now)
    while due:
        batch, due = due[:batch_size], due[batch_size:]
        pending = _submit_batch(policy, batch, now, counts)
        due = pending + due  # what a refusal of other statements held back goes out in the next request
    return counts


def _submissions_claim(*, platform: Platform, now: datetime) -> list[StatementSubmission]:
    """The platform's due statements (at most SUBMIT_MAX_PER_RUN, oldest first), claimed for this run: a run that
    overlaps it finds none of them due, so no statement is sent twice and no result is written over another's."""
    with transaction.atomic():
        claimed = list(
            StatementSubmission.objects.select_for_update(skip_locked=True)
            .filter(statement__platform=platform, status=SubmissionStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:SUBMIT_MAX_PER_RUN]
        )
        StatementSubmission.objects.filter(pk__in=claimed).update(
            next_attempt_at=now + timedelta(seconds=SUBMIT_CLAIM_SECONDS)
        )
    rows = StatementSubmission.objects.filter(pk__in=claimed).select_related("statement").in_bulk()
    return [rows[pk] for pk in claimed]


def _submit_batch(
    policy: DecisionPolicy, batch: list[StatementSubmission], now: datetime, counts: dict[str, int]
) -> list[StatementSubmission]:
    """One request; returns the submissions to send again right away (those refused only because of others)."""
    answer = transparency_db.submit_batch(
        policy.transparency_db_url, policy.transparency_db_token, [item.statement.fields for item in batch]
    )
    puids = [item.statement.puid for item in batch]
    SubmissionRequest.objects.create(
        platform=policy.platform,
        puids=puids,
        status_code=answer.status_code,
        outcome=_outcome(answer),
        latency_ms=round(answer.latency_ms, 1),
    )
    for item in batch:
        item.attempts += 1
    if answer.status_code == 201:
        for item in batch:
            _finish(item, SubmissionStatus.SUBMITTED, now, remote_uuid=answer.created.get(item.statement.puid, ""))
        counts["submitted"] += len(batch)
        return []
    # A refusal that names statements of this batch settles those; the others go out again. One that names none of
    # them (it should not happen) is treated as a failure to retry, so no request is repeated unchanged.
    existing = set(answer.existing_puids)
    if existing & set(puids):
        for item in batch:
            if item.statement.puid in existing:
                _finish(item, SubmissionStatus.DUPLICATE, now, error="already in the database")
                counts["duplicate"] += 1
        return _held_back([item for item in batch if item.statement.puid not in existing])
    if set(answer.invalid) & set(range(len(batch))):
        for index, item in enumerate(batch):
            if index in answer.invalid:
                _finish(item, SubmissionStatus.DEAD, now, error=json.dumps(answer.invalid[index])[:4000])
                counts["dead"] += 1
        return _held_back([item for index, item in enumerate(batch) if index not in answer.invalid])
    if answer.refused_as_invalid and not existing and not answer.invalid:
        for item in batch:
            _finish(item, SubmissionStatus.DEAD, now, error=f"{answer.status_code}: {answer.error}"[:4000])
        counts["dead"] += len(batch)
        return []
    delay = RETRY_BACKOFF_SECONDS[min(batch[0].attempts, len(RETRY_BACKOFF_SECONDS)) - 1]
    for item in batch:
        item.next_attempt_at = now + timedelta(seconds=delay)
        item.last_error = f"{answer.status_code or 'no answer'}: {answer.error}"[:4000]
        item.save(update_fields=["attempts", "next_attempt_at", "last_error"])
    counts["retry_later"] += len(batch)
    logger.warning("transparency database: %d statements held for %d s (%s)", len(batch), delay, batch[0].last_error)
    return []


def _held_back(items: list[StatementSubmission]) -> list[StatementSubmission]:
    for item in items:
        item.save(update_fields=["attempts"])
    return items


def _finish(item: StatementSubmission, status: str, now: datetime, *, remote_uuid: str = "", error: str = "") -> None:
    item.status, item.last_error, item.remote_uuid = status, error, remote_uuid
    if status in (SubmissionStatus.SUBMITTED, SubmissionStatus.DUPLICATE):
        item.submitted_at = now
    item.save(update_fields=["status", "attempts", "last_error", "remote_uuid", "submitted_at"])


def _outcome(answer: transparency_db.BatchAnswer) -> str:
    if answer.status_code == 201:
        return f"created {len(answer.created)}"
    if answer.existing_puids:
        return f"refused: {len(answer.existing_puids)} puids already there: {', '.join(answer.existing_puids)[:1500]}"
    if answer.invalid:
        return f"refused: {len(answer.invalid)} invalid statements: {json.dumps(answer.invalid)[:1500]}"
    return f"{'retry later' if answer.retry_later else 'refused'}: {answer.error}"[:2000]


class AppealRefused(ApplicationError):
    pass


@transaction.atomic
def appeal_receive(
    *, platform: Platform, webhook_id: str, external_id: str, complaint: str, acting_user: Actor
) -> tuple[Appeal, bool]:
    """Record a user's appeal that the platform forwarded and send the upload back to the review queue, first in line.
    Idempotent on the webhook id. Returns (appeal, created).

    Refused (409) when no restriction is in force (nothing to appeal) or an appeal on the upload is still open; 404
    when the platform has no such upload."""
    existing = Appeal.objects.filter(platform=platform, webhook_id=webhook_id).first()
    if existing is not None:
        return existing, False
    upload = Upload.objects.select_for_update().filter(platform=platform, external_id=external_id).first()
    if upload is None:
        raise ApplicationError(
            f"no upload {external_id!r}",
            code="not_found",
            status=404,
            extra={"fields": {"appeal.external_id": ["No upload with this id."]}},
        )
    latest = statement_latest(upload)
    if latest is None or not latest.restricts:
        raise AppealRefused(
            "no decision restricting this upload is in force: nothing to appeal", code="nothing_to_appeal", status=409
        )
    if Appeal.objects.filter(upload=upload, status=AppealStatus.OPEN).exists():
        raise AppealRefused("an appeal on this upload is already open", code="appeal_open", status=409)
    now = timezone.now()
    appeal = Appeal.objects.create(
        upload=upload,
        platform=platform,
        webhook_id=webhook_id,
        appealed_statement=latest,
        complaint=complaint[:5000],
        received_at=now,
        due_at=now + timedelta(hours=policy_for(platform).appeal_sla_hours),
    )
    if upload.status != UploadStatus.NEEDS_REVIEW:
        upload_transition(
            upload=upload, to=UploadStatus.NEEDS_REVIEW, reason="appealed by the user", acting_user=acting_user
        )
    upload.review_priority = APPEAL_PRIORITY
    upload.save(update_fields=["review_priority", "updated_at"])
    audit_record(
        actor=acting_user,
        platform=platform,
        action=AuditAction.UPLOAD_APPEALED,
        obj=upload,
        data={"appeal": appeal.pk, "appealed_statement": latest.puid, "due_at": appeal.due_at.isoformat()},
    )
    return appeal, True


def appeal_open_for(upload: Upload) -> Appeal | None:
    return Appeal.objects.filter(upload=upload, status=AppealStatus.OPEN).select_related("appealed_statement").first()


def appeal_decide(*, appeal: Appeal, reviewer: Any, upheld: bool, reason_code: str = "") -> StatementOfReasons:
    """Close an open appeal with its own statement of reasons; the caller (the review stage) has already changed
    the tags. Refuses the moderator who took the appealed decision (four eyes)."""
    appeal_check_four_eyes(appeal=appeal, reviewer=reviewer)
    now = timezone.now()
    statement = statement_issue(
        upload=appeal.upload,
        kind=StatementKind.APPEAL_UPHELD if upheld else StatementKind.APPEAL_REVERSED,
        restricts=upheld,
        decided_by=reviewer.get_username(),
        reason_code=reason_code or appeal.appealed_statement.reason_code,
        decided_at=now,
    )
    appeal.status = AppealStatus.UPHELD if upheld else AppealStatus.REVERSED
    appeal.decided_by, appeal.decided_at, appeal.outcome_statement = reviewer.get_username(), now, statement
    appeal.save(update_fields=["status", "decided_by", "decided_at", "outcome_statement"])
    audit_record(
        actor=reviewer,
        platform=appeal.platform,
        action=AuditAction.UPLOAD_APPEAL_DECIDED,
        obj=appeal.upload,
        data={"appeal": appeal.pk, "outcome": appeal.status, "statement": statement.puid if statement else None},
    )
    return statement


def appeal_four_eyes_bars(*, appeal: Appeal, reviewer: Any) -> bool:
    """Whether `reviewer` took the decision under appeal, and so may not decide the appeal (an automatic decision
    bars nobody)."""
    original = appeal.appealed_statement.decided_by
    return bool(original) and original == reviewer.get_username()


def appeal_check_four_eyes(*, appeal: Appeal, reviewer: Any) -> None:
    if appeal_four_eyes_bars(appeal=appeal, reviewer=reviewer):
        raise AppealRefused(
            "you took the decision under appeal: another moderator must decide the appeal (four eyes)",
            code="four_eyes",
            status=403,
        )
