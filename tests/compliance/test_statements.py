"""Statements of reasons: issued for every restricting decision (and every lift), valid against the Transparency
Database's schema, never edited, sent in callbacks, exportable."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest
from django.core.management import call_command

from callbacks.models import CallbackDelivery
from compliance.explanations import DecisionFacts, explanation_text
from compliance.models import PlatformAction, StatementKind, StatementOfReasons
from compliance.services import policy_for, statement_errors, statement_issue
from moderation.errors import ApplicationError
from reviews.services import console_user_set, review_decide
from scanning.payloads import upload_payload
from tests.compliance.conftest import labelled_upload
from tests.conftest import TEST_ACTOR, scanned_upload

pytestmark = [pytest.mark.compliance, pytest.mark.django_db]

SCHEMA = json.loads((Path(__file__).parents[2] / "compliance" / "schemas" / "tdb_statement.schema.json").read_text())


def _valid(fields: dict) -> None:
    jsonschema.validate(fields, SCHEMA, cls=jsonschema.Draft202012Validator, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def moderator(platform):
    user, _ = console_user_set(username="mia", role="moderator", platforms=[platform.platform], acting_user=TEST_ACTOR)
    return user


def _auto_labelled(platform, external_id: str):
    """Through the real pipeline: the coin model scores 0.5, and a platform threshold of 0.3 makes that ai-generated."""
    platform.platform.ai_threshold = 0.3
    platform.platform.save()
    return scanned_upload(platform, external_id)


def test_an_automatic_label_issues_a_valid_statement_in_the_upload_payload(coin_model, platform):
    upload = _auto_labelled(platform, "auto-1")
    assert upload.status == "tagged" and upload.scan_verdict == "ai-generated"
    statement = StatementOfReasons.objects.get(upload=upload)
    assert (statement.version, statement.kind, statement.restricts) == (1, "automatic", True)
    _valid(statement.fields)
    assert statement.fields["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_LABELLED"]
    assert statement.fields["automated_detection"] == "Yes"
    assert statement.fields["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert statement.fields["content_type"] == ["CONTENT_TYPE_IMAGE", "CONTENT_TYPE_SYNTHETIC_MEDIA"]
    assert statement.fields["puid"] == f"{upload.pk.hex}-v1"
    assert "AI score of 0.50, where 0.30 or more counts as AI-generated" in statement.explanation
    assert "taken automatically" in statement.explanation and "appeal" in statement.explanation
    sent = upload_payload(upload)["statement"]  # what the `upload.tagged` callback and the lookup API carry
    assert sent["puid"] == statement.puid and sent["transparency_db"] == statement.fields
    assert sent["explanation"] == statement.explanation


def test_review_without_a_restriction_issues_none(coin_model, platform, moderator):
    upload = scanned_upload(platform, "borderline-1")
    assert upload.scan_verdict == "needs-review" and not StatementOfReasons.objects.filter(upload=upload).exists()
    review_decide(upload=upload, reviewer=moderator, label="real")
    assert not StatementOfReasons.objects.filter(upload=upload).exists(), "nothing restricted, nothing lifted"


def test_a_moderator_confirming_adds_a_version_that_keeps_the_first_date(
    coin_model, platform, moderator, django_capture_on_commit_callbacks
):
    upload = _auto_labelled(platform, "auto-2")
    platform.platform.callback_url = "https://platform.example/hooks"  # after the scan: its callback is not tested here
    platform.platform.save()
    with django_capture_on_commit_callbacks(execute=False):
        review_decide(upload=upload, reviewer=moderator, label="ai-generated")
    delivery = CallbackDelivery.objects.get(upload=upload, event_type="upload.reviewed")
    assert delivery.payload["data"]["statement"]["version"] == 2
    first, second = StatementOfReasons.objects.filter(upload=upload).order_by("version")
    assert (second.version, second.kind, second.restricts, second.decided_by) == (2, "reviewer_confirmed", True, "mia")
    _valid(second.fields)
    assert second.fields["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert second.fields["automated_detection"] == "Yes"
    assert second.fields["application_date"] == first.fields["application_date"]
    assert "confirmed the automatic decision" in second.explanation
    assert first.fields["puid"] != second.fields["puid"]


def test_a_moderator_overturning_to_ai_states_the_chosen_reason(coin_model, platform, moderator):
    upload = scanned_upload(platform, "borderline-2")
    review_decide(upload=upload, reviewer=moderator, label="ai-generated", reason_code="misleading-ai-listing")
    statement = StatementOfReasons.objects.get(upload=upload)
    assert (statement.kind, statement.restricts, statement.reason_code) == (
        "reviewer_overturned",
        True,
        "misleading-ai-listing",
    )
    _valid(statement.fields)
    assert statement.fields["incompatible_content_ground"] == "Listings must show real photographs of the item offered."
    assert "presented as a real photograph" in statement.explanation
    with pytest.raises(ApplicationError, match="not one of"):
        review_decide(upload=upload, reviewer=moderator, label="ai-generated", reason_code="made-up")


def test_a_moderator_overturning_to_real_lifts_the_restriction(coin_model, platform, moderator):
    upload = _auto_labelled(platform, "auto-3")
    review_decide(upload=upload, reviewer=moderator, label="real")
    lifted = StatementOfReasons.objects.get(upload=upload, version=2)
    assert (lifted.kind, lifted.restricts) == ("reviewer_overturned", False)
    _valid(lifted.fields)
    assert lifted.fields["end_date_visibility_restriction"] == lifted.decided_at.date().isoformat()
    assert lifted.explanation.startswith("Acme Resale no longer treats this image as AI-generated.")


def test_appeal_outcomes_validate_too(platform):
    upload = labelled_upload(platform)
    upheld = statement_issue(upload=upload, kind=StatementKind.APPEAL_UPHELD, restricts=True, decided_by="ann")
    reversed_ = statement_issue(upload=upload, kind=StatementKind.APPEAL_REVERSED, restricts=False, decided_by="ann")
    for statement in (upheld, reversed_):
        _valid(statement.fields)
        assert "out-of-court dispute settlement" in statement.explanation
    assert "reviewed it and reversed it" in reversed_.explanation


def test_a_statement_is_never_edited(platform):
    statement = StatementOfReasons.objects.get(upload=labelled_upload(platform))
    statement.explanation = "something else"
    with pytest.raises(ValueError, match="never edited"):
        statement.save()


def test_the_platform_policy_decides_what_a_label_leads_to(platform):
    policy = policy_for(platform.platform)
    policy.ai_generated_action = PlatformAction.REMOVE
    policy.terms_url = "https://acme.example/terms#ai"
    policy.territorial_scope = ["NL", "DE"]
    policy.save()
    statement = StatementOfReasons.objects.get(upload=labelled_upload(platform))
    _valid(statement.fields)
    assert statement.fields["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert statement.fields["decision_ground_reference_url"] == "https://acme.example/terms#ai"
    assert statement.fields["territorial_scope"] == ["DE", "NL"]
    assert statement.explanation.startswith("Acme Resale has removed it because")
    policy.ai_generated_action = PlatformAction.NOTHING
    policy.save()
    assert not StatementOfReasons.objects.filter(upload=labelled_upload(platform)).exists()


def test_the_schema_check_refuses_what_the_database_would():
    fields = StatementOfReasons(fields={}).fields
    assert any("puid" in problem for problem in statement_errors(fields))
    good = {
        "decision_visibility": ["DECISION_VISIBILITY_CONTENT_LABELLED"],
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "incompatible_content_ground": "AI images must be disclosed.",
        "incompatible_content_explanation": "Labelled as AI-generated.",
        "content_type": ["CONTENT_TYPE_IMAGE"],
        "category": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        "content_date": "2026-12-01",
        "application_date": "2026-12-02",
        "decision_facts": "Labelled as AI-generated.",
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": "AUTOMATED_DECISION_FULLY",
        "puid": "abc-v1",
    }
    assert statement_errors(good) == []
    assert statement_errors({**good, "puid": "abc v1"}), "a space is outside the allowed characters"
    assert statement_errors({**good, "decision_visibility": []}), "at least one decision"
    assert statement_errors({**good, "incompatible_content_ground": None}), "required by this ground"
    assert statement_errors({**good, "category": "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"}), "a 2024 value"


def test_the_explanation_is_written_from_the_evidence():
    c2pa = {
        "kind": "c2pa",
        "value": "trainedAlgorithmicMedia",
        "strength": "decisive",
        "source": "c2pa:actions",
        "ai": True,
        "detail": {"claim_generator": "OpenAI DALL-E", "validation_state": "Trusted"},
    }
    camera = {"kind": "camera_exif", "value": "Canon", "strength": "weak", "source": "exif", "ai": False, "detail": {}}
    text = explanation_text(
        DecisionFacts(
            platform_name="Acme",
            action="label",
            restricts=True,
            kind="reviewer_confirmed",
            reason_label="Undisclosed AI-generated image",
            evidence=[camera, c2pa],
            score=0.97,
            threshold=0.6,
            model_version="cascade@0.3.0",
        )
    )
    assert "C2PA content credential written by OpenAI DALL-E (signature: Trusted)" in text
    assert "Canon" not in text, "evidence against AI is not given as a reason"
    assert "cascade@0.3.0" in text and "0.97" in text and "A moderator reviewed" in text


def test_statements_export_as_json_and_csv(platform, tmp_path):
    uploads = [labelled_upload(platform, f"exp-{i}") for i in range(3)]
    out = io.StringIO()
    call_command("statements_export", "acme", "--format", "json", stdout=out)
    rows = json.loads(out.getvalue())
    assert [row["external_id"] for row in rows] == ["exp-0", "exp-1", "exp-2"]
    assert rows[0]["fields"]["puid"] == f"{uploads[0].pk.hex}-v1"
    target = tmp_path / "statements.csv"
    call_command("statements_export", "acme", "--format", "csv", "--output", str(target))
    table = list(csv.DictReader(target.open()))
    assert len(table) == 3 and table[0]["kind"] == "automatic"
    assert json.loads(table[0]["fields"])["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"


def test_a_policy_that_would_make_statements_invalid_is_refused(platform):
    from django.core.exceptions import ValidationError

    policy = policy_for(platform.platform)
    policy.full_clean()
    for field, value in (
        ("reason_codes", []),
        ("reason_codes", [{"code": "x", "label": "X", "ground": " "}]),
        ("reason_codes", [{"code": "x", "label": "X", "ground": "g"}, {"code": "x", "label": "Y", "ground": "h"}]),
        ("territorial_scope", ["DE", "US"]),
    ):
        setattr(policy, field, value)
        with pytest.raises(ValidationError, match=field):
            policy.full_clean()
        policy.refresh_from_db()


def test_a_broken_policy_does_not_hold_up_the_verdict(coin_model, platform, caplog):
    from compliance.models import DecisionPolicy

    DecisionPolicy.objects.create(platform=platform.platform, reason_codes=[])  # saved around the admin's checks
    upload = _auto_labelled(platform, "auto-broken-policy")
    assert upload.status == "tagged" and upload.scan_verdict == "ai-generated"
    assert not StatementOfReasons.objects.filter(upload=upload).exists()
    assert "no statement of reasons" in caplog.text
