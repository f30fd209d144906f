"""The Django admin (`/admin/`), for operators: every stage's records in one place. On top, like the console."""

from django.contrib import admin

from callbacks.models import CallbackDelivery, CallbackDeliveryAttempt
from callbacks.tasks import callback_redeliver
from compliance.models import DecisionPolicy, StatementOfReasons, StatementSubmission, SubmissionRequest
from moderation.models import AuditEvent, Platform, Upload
from registry.models import ModelVersion
from reviews.models import ReviewDecision
from scanning.models import Scan, ShadowScore, Tag


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "callback_url", "ai_threshold", "review_margin", "created_at"]
    search_fields = ["slug", "name"]
    exclude = ["api_token_hash", "webhook_secrets"]


class TagInline(admin.TabularInline):
    model = Tag
    extra = 0
    readonly_fields = ["name", "source", "confidence", "scan", "created_at"]


class ScanInline(admin.TabularInline):
    model = Scan
    extra = 0
    readonly_fields = [
        "model_name",
        "model_version",
        "score",
        "cnn_score",
        "vit_score",
        "path",
        "verdict",
        "latency_ms",
        "error",
    ]
    fields = readonly_fields


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["external_id", "platform", "status", "created_at"]
    list_filter = ["status", "platform"]
    search_fields = ["external_id", "sha256", "webhook_id"]
    readonly_fields = [
        "id",
        "sha256",
        "status_history",
        "webhook_id",
        "fetch_attempts",
        "scan_attempts",
        "created_at",
        "updated_at",
    ]
    inlines = [ScanInline, TagInline]


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["upload", "model_name", "model_version", "score", "verdict", "path", "latency_ms", "created_at"]
    list_filter = ["verdict", "path", "model_version"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["upload", "name", "source", "confidence", "created_at"]
    list_filter = ["name", "source"]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(admin.ModelAdmin):
    """View only: a decision is a training label with tags, the hash bank and a callback behind it, all made by
    `reviews.services.review_decide`; an edit here would change the label and none of them."""

    list_display = ["upload", "reviewer", "label", "created_at"]
    list_filter = ["label"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "platform", "action", "object_type", "object_id"]
    list_filter = ["action"]
    readonly_fields = ["created_at", "actor", "platform", "action", "object_type", "object_id", "data"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "status", "shadow_agreement", "labels_used", "created_at", "activated_at"]
    list_filter = ["status"]
    # Every change of status goes through the gate, promote and rollback (audited), never an edit here.
    readonly_fields = [
        "status",
        "card",
        "gate",
        "checkpoint_path",
        "parent",
        "labels_used",
        "created_at",
        "activated_at",
        "rolled_back_at",
    ]

    @admin.display(description="shadow agreement")
    def shadow_agreement(self, obj: ModelVersion) -> str:
        total = obj.shadow_scores.count()
        if not total:
            return "-"
        return f"{obj.shadow_scores.filter(agrees=True).count() / total:.1%} of {total}"


@admin.register(ShadowScore)
class ShadowScoreAdmin(admin.ModelAdmin):
    list_display = ["scan", "model_version", "score", "is_ai", "agrees", "created_at"]
    list_filter = ["agrees", "model_version"]


class CallbackDeliveryAttemptInline(admin.TabularInline):
    model = CallbackDeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["number", "outcome", "status_code", "error", "latency_ms", "created_at"]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    inlines = [CallbackDeliveryAttemptInline]
    list_display = ["created_at", "platform", "event_type", "status", "attempts", "last_status_code", "last_latency_ms"]
    list_filter = ["status", "event_type", "platform"]
    readonly_fields = [field.name for field in CallbackDelivery._meta.fields]
    actions = ["redeliver"]

    @admin.action(description="Deliver again (same event id)")
    def redeliver(self, request, queryset):  # type: ignore[no-untyped-def]
        for delivery in queryset:
            callback_redeliver(delivery=delivery, acting_user=request.user)
        self.message_user(request, f"{queryset.count()} deliveries queued again")


class StatementSubmissionInline(admin.StackedInline):
    model = StatementSubmission
    readonly_fields = [field.name for field in StatementSubmission._meta.fields]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(StatementOfReasons)
class StatementOfReasonsAdmin(admin.ModelAdmin):
    """Read-only: a statement is never edited; a later decision issues the next version."""

    list_display = ["puid", "platform", "version", "kind", "restricts", "reason_code", "decided_by", "decided_at"]
    list_filter = ["platform", "kind", "restricts"]
    search_fields = ["puid", "upload__external_id"]
    readonly_fields = [field.name for field in StatementOfReasons._meta.fields]
    inlines = [StatementSubmissionInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(DecisionPolicy)
class DecisionPolicyAdmin(admin.ModelAdmin):
    list_display = ["platform", "ai_generated_action", "transparency_db_enabled", "appeal_sla_hours"]


@admin.register(SubmissionRequest)
class SubmissionRequestAdmin(admin.ModelAdmin):
    list_display = ["sent_at", "platform", "status_code", "outcome"]
    readonly_fields = [field.name for field in SubmissionRequest._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
