"""A database at the schema before the stage split (moderation 0007: every model in the core app) migrates to the
new layout with every row, relation, content type and permission grant intact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps as current_apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE_SPLIT = [("moderation", "0007_scan_review_reason")]
MOVED = {
    "scan": "scanning",
    "tag": "scanning",
    "shadowscore": "scanning",
    "reviewdecision": "reviews",
    "reviewclaim": "reviews",
    "hashbankentry": "hashbank",
    "retroscan": "hashbank",
    "modelversion": "registry",
    "callbackdelivery": "callbacks",
}
PDQ = "f" * 64


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _populate(old) -> dict:
    """One of everything, linked as the pipeline links them, through the models as they were at 0007."""
    model = lambda name: old.get_model("moderation", name)  # noqa: E731
    user = old.get_model("auth", "User").objects.create(username="lead")
    platform = model("Platform").objects.create(slug="shop", name="Shop", api_token_hash="h" * 64)
    upload = model("Upload").objects.create(
        platform=platform,
        external_id="p1",
        webhook_id="msg_1",
        source_url="https://example.com/p1.jpg",
        status="reviewed",
        scan_verdict="ai-generated",
    )
    active = model("ModelVersion").objects.create(name="m", version="1", checkpoint_path="builtin:default")
    shadow = model("ModelVersion").objects.create(
        name="m", version="2", checkpoint_path="/models/m-2", status="shadow", parent=active
    )
    scan = model("Scan").objects.create(
        upload=upload, model_name="m", model_version="1", score=0.9, cnn_score=0.9, verdict="ai-generated"
    )
    model("Tag").objects.create(upload=upload, name="ai-generated", source="auto", confidence=0.9, scan=scan)
    model("ShadowScore").objects.create(scan=scan, model_version=shadow, score=0.8, is_ai=True, agrees=True)
    decision = model("ReviewDecision").objects.create(upload=upload, reviewer=user, label="ai-generated")
    model("ReviewClaim").objects.create(upload=upload, reviewer=user, expires_at=timezone.now() + timedelta(minutes=5))
    entry = model("HashBankEntry").objects.create(
        platform=platform, pdq_hash=PDQ, upload=upload, review_decision=decision, added_by=user
    )
    retro = model("RetroScan").objects.create(kind="hash_match", platform=platform, created_by=user)
    retro.entries.add(entry)
    model("CallbackDelivery").objects.create(
        platform=platform, upload=upload, event_type="upload.reviewed", event_id="msg_cb_1", payload={"a": 1}
    )
    model("AuditEvent").objects.create(actor=user, platform=platform, action="upload.reviewed", object_type="upload",
                                       object_id=str(upload.pk))  # fmt: skip

    # Before the split, content types of these models were labelled "moderation", and the console roles held
    # permissions through them.
    content_type = old.get_model("contenttypes", "ContentType")
    permission = old.get_model("auth", "Permission")
    group = old.get_model("auth", "Group").objects.create(name="legacy-lead")
    for name, app in MOVED.items():
        content_type.objects.filter(app_label=app, model=name).delete()
        old_type, _ = content_type.objects.get_or_create(app_label="moderation", model=name)
        granted, _ = permission.objects.get_or_create(
            content_type=old_type, codename=f"view_{name}", defaults={"name": f"Can view {name}"}
        )
        group.permissions.add(granted)
    review, _ = permission.objects.get_or_create(
        content_type=content_type.objects.get(app_label="moderation", model="reviewdecision"),
        codename="review_upload",
        defaults={"name": "Can review uploads of assigned platforms"},
    )
    group.permissions.add(review)
    return {"upload": upload.pk, "scan": scan.pk, "decision": decision.pk, "entry": entry.pk, "retro": retro.pk}


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_split_migrates_with_every_row_and_relation():
    head = MigrationExecutor(connection).loader.graph.leaf_nodes()
    stages = set(MOVED.values()) | {"moderation", "fetching", "compliance"}  # apps whose migrations follow 0007
    before = [node for node in head if node[0] not in stages] + BEFORE_SPLIT
    _migrate(before)
    try:
        ids = _populate(MigrationExecutor(connection).loader.project_state(before).apps)
    finally:
        _migrate(head)

    from django.contrib.auth.models import Group

    from callbacks.models import CallbackDelivery
    from hashbank.models import HashBankEntry, RetroScan
    from moderation.models import AuditEvent, Upload
    from registry.models import ModelVersion
    from reviews.models import ReviewClaim, ReviewDecision
    from scanning.models import Scan, ShadowScore, Tag

    upload = Upload.objects.get(pk=ids["upload"])
    scan = Scan.objects.get(pk=ids["scan"])
    assert scan.upload == upload and list(upload.scans.all()) == [scan]
    tag = Tag.objects.get(upload=upload)
    assert tag.scan == scan and tag.name == "ai-generated"
    shadow = ShadowScore.objects.get(scan=scan)
    assert shadow.model_version.parent == ModelVersion.objects.get(version="1")
    decision = ReviewDecision.objects.get(pk=ids["decision"])
    assert decision.upload == upload and decision.reviewer.username == "lead"
    assert ReviewClaim.objects.get(upload=upload).reviewer == decision.reviewer
    entry = HashBankEntry.objects.get(pk=ids["entry"])
    assert entry.review_decision == decision and entry.upload == upload and list(upload.bank_hashes.all()) == [entry]
    assert list(RetroScan.objects.get(pk=ids["retro"]).entries.all()) == [entry]
    assert CallbackDelivery.objects.get(event_id="msg_cb_1").upload == upload
    assert AuditEvent.objects.get(object_id=str(upload.pk)).actor == decision.reviewer
    moved = (
        Scan,
        Tag,
        ShadowScore,
        ReviewDecision,
        ReviewClaim,
        HashBankEntry,
        RetroScan,
        ModelVersion,
        CallbackDelivery,
    )
    counts = {m._meta.model_name: m.objects.count() for m in moved}
    assert counts == dict.fromkeys(MOVED, 1) | {"modelversion": 2}

    # The content types followed their models, so the group's grants still name them, under the new labels.
    grants = {
        f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="legacy-lead").permissions.all()
    }
    assert grants == {f"{app}.view_{name}" for name, app in MOVED.items()} | {"reviews.review_upload"}
    for name, app in MOVED.items():
        assert current_apps.get_model(app, name)._meta.db_table == f"moderation_{name}"
