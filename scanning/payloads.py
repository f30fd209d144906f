"""What platforms see of an upload: one shape for the lookup API and every callback, so they parse one contract."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compliance.selectors import statement_public
from moderation.links import upload_lookup_url
from moderation.models import Upload

from .selectors import latest_scored_scan, scan_verdict_basis, uploads_with_results


class TagOutput(serializers.Serializer):
    name = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    source = serializers.CharField()


class VerdictOutput(serializers.Serializer):
    label = serializers.CharField()
    score = serializers.FloatField()
    cnn_score = serializers.FloatField()
    vit_score = serializers.FloatField(allow_null=True)
    path = serializers.CharField()
    model_version = serializers.CharField()
    vit_model_version = serializers.CharField(allow_null=True)
    threshold = serializers.FloatField()
    latency_ms = serializers.FloatField()
    decided_by = serializers.ChoiceField(
        choices=["pixels", "provenance"], help_text="provenance: declared AI provenance or a known-fake match decided"
    )
    review_reason = serializers.CharField(
        allow_null=True, help_text="why the detector itself asked for a person (e.g. its models disagree)"
    )


class EvidenceOutput(serializers.Serializer):
    kind = serializers.CharField(help_text="c2pa, digital_source_type, generator_metadata, sd_watermark, …")
    value = serializers.CharField()
    strength = serializers.ChoiceField(choices=["decisive", "strong", "weak"])
    source = serializers.CharField()
    ai = serializers.BooleanField(allow_null=True, help_text="true: points to AI; false: to a camera; null: neutral")
    detail = serializers.DictField()


class StatusChangeOutput(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    reason = serializers.CharField(default="", help_text="why the upload entered this state (empty before 2026-12)")


class ReviewOutput(serializers.Serializer):
    label = serializers.CharField()
    decided_at = serializers.DateTimeField(source="created_at")


class StatementOutput(serializers.Serializer):
    version = serializers.IntegerField(help_text="1, 2, …: each decision adds a version; none is ever edited")
    kind = serializers.ChoiceField(
        choices=["automatic", "reviewer_confirmed", "reviewer_overturned", "appeal_upheld", "appeal_reversed"]
    )
    restricts = serializers.BooleanField(help_text="false: this version lifts the restriction an earlier one stated")
    puid = serializers.CharField()
    reason_code = serializers.CharField()
    decided_at = serializers.DateTimeField()
    explanation = serializers.CharField(help_text="what to tell the user, written from the evidence")
    transparency_db = serializers.DictField(
        help_text="the statement in the DSA Transparency Database's schema (2025), ready to submit"
    )


class AppealOutput(serializers.Serializer):
    appeal_id = serializers.IntegerField(source="pk")
    status = serializers.ChoiceField(choices=["open", "upheld", "reversed"])
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(help_text="the platform policy's appeal SLA")
    decided_at = serializers.DateTimeField(allow_null=True)


class UploadOutput(serializers.Serializer):
    upload_id = serializers.UUIDField(source="id")
    external_id = serializers.CharField()
    status = serializers.CharField()
    status_history = StatusChangeOutput(many=True, help_text="every state the upload entered, oldest first")
    failure_reason = serializers.CharField(allow_blank=True)
    sha256 = serializers.CharField(allow_blank=True)
    tags = TagOutput(many=True)
    verdict = serializers.SerializerMethodField()
    evidence = EvidenceOutput(many=True)
    review = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()
    statement = serializers.SerializerMethodField()
    appeal = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(VerdictOutput(allow_null=True))
    def get_verdict(self, upload: Upload) -> dict | None:
        scan = latest_scored_scan(upload)
        if scan is None:
            return None
        return VerdictOutput(
            {
                "label": scan.verdict,
                "score": scan.score,
                "cnn_score": scan.cnn_score,
                "vit_score": scan.vit_score,
                "path": scan.path,
                "model_version": f"{scan.model_name}@{scan.model_version}",
                "vit_model_version": scan.vit_model_version or None,
                "threshold": scan.threshold,
                "latency_ms": scan.latency_ms,
                "review_reason": scan.review_reason or None,
                "decided_by": scan_verdict_basis(upload=upload, scan=scan).decided_by,
            }
        ).data

    @extend_schema_field(ReviewOutput(allow_null=True))
    def get_review(self, upload: Upload) -> dict | None:
        """A moderator's latest decision (ai-generated or real); it overrides the machine verdict's tags."""
        decision = next(iter(getattr(upload, "decisions_newest_first", [])), None)
        return ReviewOutput(decision).data if decision is not None else None

    @extend_schema_field(StatementOutput(allow_null=True))
    def get_statement(self, upload: Upload) -> dict | None:
        """The latest statement of reasons (DSA Art. 17) for a decision that restricts the upload or lifts that."""
        statement = next(iter(getattr(upload, "statements_newest_first", [])), None)
        return statement_public(statement) if statement is not None else None

    @extend_schema_field(AppealOutput(allow_null=True))
    def get_appeal(self, upload: Upload) -> dict | None:
        """The latest appeal a user made against a decision on this upload (DSA Art. 20)."""
        appeal = next(iter(getattr(upload, "appeals_newest_first", [])), None)
        return AppealOutput(appeal).data if appeal is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_heatmap_url(self, upload: Upload) -> str | None:
        if latest_scored_scan(upload) is None:
            return None
        return upload_lookup_url(upload.external_id, heatmap=True)


def upload_payload(upload: Upload) -> dict[str, Any]:
    """The upload as the lookup API shows it, as plain JSON data (for a callback's `data`)."""
    return upload_payloads([upload])[upload.pk]


def upload_payloads(uploads: list[Upload]) -> dict[Any, dict[str, Any]]:
    """`upload_payload` of many uploads, by id, read together (one query per relation for all, not a set each)."""
    fresh = list(uploads_with_results(ids=[upload.pk for upload in uploads]))
    data = json.loads(json.dumps(UploadOutput(fresh, many=True).data))
    return {upload.pk: item for upload, item in zip(fresh, data, strict=True)}
