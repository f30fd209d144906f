"""What a platform's decisions lead to, the statements of reasons they produce, and their submission log."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from moderation.models import Platform, Upload

from .schema import territories


class PlatformAction(models.TextChoices):
    """What the platform does to an upload we decide is AI-generated."""

    LABEL = "label", "Label it as AI-generated"
    DEMOTE = "demote", "Demote it"
    REMOVE = "remove", "Remove it"
    NOTHING = "nothing", "Nothing (no restriction, no statement)"


def default_reason_codes() -> list[dict[str, str]]:
    return [
        {
            "code": "undisclosed-ai",
            "label": "Undisclosed AI-generated image",
            "ground": "Images made or substantially altered with AI must be disclosed as such.",
        },
        {
            "code": "misleading-ai-listing",
            "label": "AI-generated image presented as a real photograph of the item",
            "ground": "Listings must show real photographs of the item offered.",
        },
    ]


class DecisionPolicy(models.Model):
    """One platform's policy: what an AI-generated verdict leads to, on which ground, in which territories, the reason
    codes its moderators choose from, how long appeals may take, and whether statements go to the Transparency
    Database (and where)."""

    platform = models.OneToOneField(Platform, on_delete=models.CASCADE, related_name="decision_policy")
    ai_generated_action = models.CharField(max_length=8, choices=PlatformAction.choices, default=PlatformAction.LABEL)
    # The terms-of-service clause the decisions rest on (statement field `decision_ground_reference_url`).
    terms_url = models.URLField(max_length=500, blank=True)
    # EU/EEA country codes where the restriction applies (`territorial_scope`).
    territorial_scope = models.JSONField(default=list, blank=True)
    # [{"code", "label", "ground"}]: what moderators pick from; the first is the automatic decisions' reason.
    reason_codes = models.JSONField(default=default_reason_codes)
    appeal_sla_hours = models.PositiveIntegerField(default=72)
    # Submission to the DSA Transparency Database: off by default; the platform's own API token.
    transparency_db_enabled = models.BooleanField(default=False)
    transparency_db_url = models.URLField(max_length=500, blank=True, default="https://transparency.dsa.ec.europa.eu")
    transparency_db_token = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ai_generated_action__in=PlatformAction.values), name="policy_action_valid"
            )
        ]

    def __str__(self) -> str:
        return f"decision policy of {self.platform}"

    def clean(self) -> None:
        """Refuse what would make statements invalid: every decision cites one of these reasons, in these places."""
        codes = self.reason_codes
        if not isinstance(codes, list) or not codes:
            raise ValidationError({"reason_codes": "List at least one reason: {code, label, ground}."})
        seen = set()
        for reason in codes:
            if not isinstance(reason, dict) or not all(
                isinstance(reason.get(key), str) and reason[key].strip() for key in ("code", "label", "ground")
            ):
                raise ValidationError({"reason_codes": f"Each reason needs a code, a label and a ground: {reason!r}"})
            if len(reason["code"]) > 64 or len(reason["ground"]) > 500 or len(reason["label"]) > 500:
                raise ValidationError({"reason_codes": f"Too long (code 64, label and ground 500): {reason['code']!r}"})
            if reason["code"] in seen:
                raise ValidationError({"reason_codes": f"Listed twice: {reason['code']!r}"})
            seen.add(reason["code"])
        unknown = set(self.territorial_scope or []) - territories()
        if not isinstance(self.territorial_scope, list) or unknown:
            raise ValidationError({"territorial_scope": f"EU/EEA country codes only; not {sorted(unknown)}"})


class StatementKind(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic decision"
    REVIEWER_CONFIRMED = "reviewer_confirmed", "Moderator confirmed the automatic verdict"
    REVIEWER_OVERTURNED = "reviewer_overturned", "Moderator overturned the automatic verdict"
    APPEAL_UPHELD = "appeal_upheld", "Appeal decided: decision upheld"
    APPEAL_REVERSED = "appeal_reversed", "Appeal decided: decision reversed"


class StatementOfReasons(models.Model):
    """One version of the statement of reasons for a decision on an upload. Never edited: a later decision adds the
    next version. `fields` is the statement as the Transparency Database takes it; `explanation` is the text for the
    user. A version that lifts a restriction has `restricts` false and the restriction's end date set."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="statements")
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="statements")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=24, choices=StatementKind.choices)
    restricts = models.BooleanField()
    # The Transparency Database's platform-unique id for this statement ([A-Za-z0-9_-], at most 500).
    puid = models.CharField(max_length=500)
    reason_code = models.CharField(max_length=64)
    decision_visibility = models.CharField(max_length=64)
    automated_decision = models.CharField(max_length=40)
    automated_detection = models.BooleanField()
    # Who decided: empty for automatic decisions.
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField()
    fields = models.JSONField()
    explanation = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "version"], name="statement_version_unique"),
            models.UniqueConstraint(fields=["platform", "puid"], name="statement_puid_unique_per_platform"),
            models.CheckConstraint(condition=Q(kind__in=StatementKind.values), name="statement_kind_valid"),
        ]
        indexes = [models.Index(fields=["platform", "decided_at"])]
        ordering = ["upload", "version"]

    def __str__(self) -> str:
        return f"statement v{self.version} ({self.kind}) for {self.upload_id}"

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise ValueError("a statement of reasons is never edited; issue the next version instead")
        super().save(*args, **kwargs)


class SubmissionStatus(models.TextChoices):
    PENDING = "pending"
    SUBMITTED = "submitted"
    # The database already held this puid (an earlier attempt that timed out had gone through): not sent again.
    DUPLICATE = "duplicate"
    # Refused as invalid (4xx): kept with the reason for a person to look at; never retried.
    DEAD = "dead"


class StatementSubmission(models.Model):
    """A restricting statement's way to the Transparency Database."""

    statement = models.OneToOneField(StatementOfReasons, on_delete=models.CASCADE, related_name="submission")
    status = models.CharField(max_length=16, choices=SubmissionStatus.choices, default=SubmissionStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The database's id for the statement, from its answer.
    remote_uuid = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SubmissionStatus.values), name="submission_status_valid")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.statement.puid}: {self.status}"


class SubmissionRequest(models.Model):
    """The submission log: one row per request to the Transparency Database, with what it answered."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="submission_requests")
    sent_at = models.DateTimeField(auto_now_add=True)
    puids = models.JSONField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.TextField()
    latency_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"{len(self.puids)} statements → {self.status_code or 'no answer'}"


class AppealStatus(models.TextChoices):
    OPEN = "open"
    UPHELD = "upheld"
    REVERSED = "reversed"


class Appeal(models.Model):
    """A user's complaint against a decision (DSA Art. 20), forwarded by the platform with a signed webhook. Decided by
    a moderator other than the one who took the appealed decision, within the platform policy's SLA."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="appeals")
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="appeals")
    # The Standard Webhooks event id that delivered it: a retry returns the same appeal.
    webhook_id = models.CharField(max_length=255)
    # The statement in force when the appeal came: the decision appealed against.
    appealed_statement = models.ForeignKey(StatementOfReasons, on_delete=models.PROTECT, related_name="appeals")
    complaint = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=AppealStatus.choices, default=AppealStatus.OPEN)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField()
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome_statement = models.OneToOneField(
        StatementOfReasons, on_delete=models.PROTECT, null=True, blank=True, related_name="deciding_appeal"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "webhook_id"], name="appeal_webhook_id_unique_per_platform"),
            models.UniqueConstraint(fields=["upload"], condition=Q(status="open"), name="one_open_appeal_per_upload"),
            models.CheckConstraint(condition=Q(status__in=AppealStatus.values), name="appeal_status_valid"),
        ]
        indexes = [models.Index(fields=["platform", "received_at"])]

    def __str__(self) -> str:
        return f"appeal on {self.upload_id}: {self.status}"
