from django.contrib import admin

from .models import AuditEvent, Platform, ReviewDecision, Scan, Tag, Upload


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
    readonly_fields = ["id", "sha256", "status_history", "webhook_id", "attempts", "created_at", "updated_at"]
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
    list_display = ["upload", "reviewer", "label", "created_at"]
    list_filter = ["label"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "platform", "action", "object_type", "object_id"]
    list_filter = ["action"]
    readonly_fields = ["created_at", "actor", "platform", "action", "object_type", "object_id", "data"]
