"""The bank of confirmed fakes through the real pipeline: banking on a decision, matching new uploads, retro scans,
sharing between platforms, CSV import/export, and what provenance does to the verdict."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from PIL import Image, PngImagePlugin

from detector.hashing import BANK_CROPS
from hashbank.models import HashBankEntry, RetroScan
from moderation.models import UploadStatus
from reviews.services import review_decide
from tests.conftest import photo_bytes, scanned_upload
from tests.images import natural_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(db):
    return get_user_model().objects.create_user("leo", password="pw")


def _tags(upload) -> dict[str, str]:
    return dict(upload.tags.values_list("name", "source"))


def _confirm_fake(upload, reviewer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # runs the retro scan the decision queues
        review_decide(upload=upload, reviewer=reviewer, label="ai-generated")


def test_a_confirmed_fake_is_banked_and_its_copies_are_caught(
    coin_model, platform, lead, django_capture_on_commit_callbacks
):
    original = scanned_upload(platform, "fake-1", image=photo_bytes(1))
    assert original.pdq_hash and original.pdq_quality >= 50
    _confirm_fake(original, lead, django_capture_on_commit_callbacks)
    banked = HashBankEntry.objects.filter(platform=platform.platform, upload=original).count()
    assert banked == 1 + len(BANK_CROPS)  # the whole picture and its centred crops

    picture = natural_photo(480, 360, 1)
    copies = {
        "q60": photo_bytes(1, quality=60),
        "half": _jpeg(picture.resize((240, 180))),
        "crop": _jpeg(picture.crop((12, 9, 468, 351))),
        "aspect": _jpeg(picture.crop((30, 0, 450, 360))),  # cut to a narrower aspect ratio, as platforms do
    }
    for name, data in copies.items():
        copy = scanned_upload(platform, f"copy-{name}", image=data)
        [match] = [f for f in copy.evidence if f["kind"] == "known_fake_match"]
        assert match["detail"]["original_upload_id"] == str(original.pk), name
        assert match["detail"]["review_decision_id"] == original.review_decisions.get().pk
        # The coin model alone would say needs-review; the match decides (the platform's default policy).
        assert copy.status == UploadStatus.TAGGED and copy.scan_verdict == "ai-generated"
        assert _tags(copy) == {"ai-generated": "provenance", "known-fake-match": "provenance"}

    unrelated = scanned_upload(platform, "unrelated", image=photo_bytes(2))
    assert not [f for f in unrelated.evidence if f["kind"] == "known_fake_match"]
    assert unrelated.status == UploadStatus.NEEDS_REVIEW


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_fake_confirmed_today_flags_its_earlier_copy_for_review(
    coin_model, platform, lead, django_capture_on_commit_callbacks
):
    platform.platform.ai_threshold = 0.7  # the coin model's 0.5 now auto-tags everything likely-real
    platform.platform.save()
    earlier_copy = scanned_upload(platform, "yesterday", image=photo_bytes(3, quality=60))
    unrelated = scanned_upload(platform, "other", image=photo_bytes(4))
    assert earlier_copy.status == UploadStatus.TAGGED and earlier_copy.scan_verdict == "likely-real"

    today = scanned_upload(platform, "today", image=photo_bytes(3))
    _confirm_fake(today, lead, django_capture_on_commit_callbacks)

    retro = RetroScan.objects.get()
    assert retro.status == "done" and retro.processed == 2
    assert [hit["external_id"] for hit in retro.flagged] == ["yesterday"]
    earlier_copy.refresh_from_db()
    assert earlier_copy.status == UploadStatus.NEEDS_REVIEW
    assert earlier_copy.review_priority >= 500
    assert "known-fake-match" in _tags(earlier_copy)
    assert earlier_copy.evidence[-1]["detail"]["original_upload_id"] == str(today.pk)
    unrelated.refresh_from_db()
    assert unrelated.status == UploadStatus.TAGGED

    # Running it again flags nothing twice.
    from scanning.rescans import retro_scan_run

    RetroScan.objects.filter(pk=retro.pk).update(status="queued")
    assert [hit["external_id"] for hit in retro_scan_run(retro_scan_id=retro.pk).flagged] == ["yesterday"]
    earlier_copy.refresh_from_db()
    assert [f["kind"] for f in earlier_copy.evidence].count("known_fake_match") == 1


def test_banks_are_per_platform_unless_both_share(
    coin_model, platform, other_platform, lead, django_capture_on_commit_callbacks
):
    fake = scanned_upload(platform, "fake", image=photo_bytes(5))
    _confirm_fake(fake, lead, django_capture_on_commit_callbacks)
    elsewhere = scanned_upload(other_platform, "copy", image=photo_bytes(5, quality=70))
    assert not [f for f in elsewhere.evidence if f["kind"] == "known_fake_match"]

    for credentials in (platform, other_platform):
        credentials.platform.share_hashes = True
        credentials.platform.save()
    shared_fake = scanned_upload(platform, "shared-fake", image=photo_bytes(6))
    _confirm_fake(shared_fake, lead, django_capture_on_commit_callbacks)
    assert HashBankEntry.objects.filter(platform__isnull=True).count() == 1 + len(BANK_CROPS)
    shared_copy = scanned_upload(other_platform, "shared-copy", image=photo_bytes(6, quality=70))
    [match] = [f for f in shared_copy.evidence if f["kind"] == "known_fake_match"]
    assert match["source"] == "hash_bank:pdq:shared"
    # Nothing about the other platform's upload, decision or moderator is passed on.
    assert match["detail"]["original_upload_id"] is None and match["detail"]["review_decision_id"] is None
    assert "leo" not in str(match)


def test_overturning_a_confirmed_fake_takes_it_out_of_the_bank(
    coin_model, platform, lead, django_capture_on_commit_callbacks
):
    fake = scanned_upload(platform, "mistake", image=photo_bytes(9))
    _confirm_fake(fake, lead, django_capture_on_commit_callbacks)
    _confirm_fake(fake, lead, django_capture_on_commit_callbacks)  # confirming again banks nothing twice
    assert HashBankEntry.objects.filter(upload=fake).count() == 1 + len(BANK_CROPS)
    review_decide(upload=fake, reviewer=lead, label="real")
    assert not HashBankEntry.objects.exists()
    copy = scanned_upload(platform, "mistake-copy", image=photo_bytes(9, quality=60))
    assert not [f for f in copy.evidence if f["kind"] == "known_fake_match"]


def test_hostile_metadata_text_is_stored_safely(coin_model, platform):
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "Stable\x00 Diffusion \xff")
    buffer = io.BytesIO()
    natural_photo(320, 240, 11).save(buffer, "PNG", pnginfo=info)
    upload = scanned_upload(platform, "nul-chunk", image=buffer.getvalue())
    assert upload.status in (UploadStatus.TAGGED, UploadStatus.NEEDS_REVIEW)
    assert "\x00" not in str(upload.evidence)


def test_repeated_retro_matches_boost_the_priority_once():
    from hashbank.services import known_fake_priority

    assert known_fake_priority(80) == 580
    assert known_fake_priority(known_fake_priority(80)) == 580
    assert known_fake_priority(1080) == 1080  # platform-flagged stays on top


def test_hash_lists_import_and_export_as_csv(coin_model, platform, tmp_path):
    from detector.hashing import pdq_hash

    banned = pdq_hash(natural_photo(480, 360, 7)).hex
    source = tmp_path / "list.csv"
    source.write_text(f"pdq_hash,sha256,note\n{banned},,from a partner list\n")
    call_command("hashbank", "import", str(source), "--platform", "acme")

    copy = scanned_upload(platform, "partner-copy", image=photo_bytes(7, quality=60))
    [match] = [f for f in copy.evidence if f["kind"] == "known_fake_match"]
    assert match["detail"]["note"] == "from a partner list"

    out = tmp_path / "export.csv"
    call_command("hashbank", "export", str(out), "--platform", "acme")
    lines = out.read_text().splitlines()
    assert lines[0] == "pdq_hash,sha256,note,created_at" and lines[1].startswith(f"{banned},,from a partner list,")

    (tmp_path / "bad.csv").write_text(f"pdq_hash\n{banned}\nnot-a-hash\n")
    with pytest.raises(CommandError, match="line 3"):
        call_command("hashbank", "import", str(tmp_path / "bad.csv"), "--platform", "acme")
    assert HashBankEntry.objects.count() == 1


def _a1111_png(seed: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a photo of a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 42")
    buffer = io.BytesIO()
    natural_photo(480, 360, seed).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("policy", "status", "verdict"),
    [
        ("decide", "tagged", "ai-generated"),
        ("review", "needs_review", "needs-review"),
        ("ignore", "tagged", "likely-real"),
    ],
)
def test_provenance_policy_decides_what_generator_metadata_does(coin_model, platform, policy, status, verdict):
    platform.platform.ai_threshold = 0.7  # pixels alone: likely-real
    platform.platform.provenance_policy = policy
    platform.platform.save()
    upload = scanned_upload(platform, f"a1111-{policy}", image=_a1111_png(8))
    [finding] = [f for f in upload.evidence if f["kind"] == "generator_metadata"]
    assert finding["value"] == "AUTOMATIC1111" and finding["ai"] is True
    assert (upload.status, upload.scan_verdict) == (status, verdict)


def test_promotion_rescoring_lists_changed_verdicts_for_review(coin_model, platform, lead):
    from registry.models import ModelStatus, ModelVersion
    from retraining.services import model_version_promote
    from scanning.rescans import retro_scan_run

    platform.platform.ai_threshold = 0.7  # the coin model's 0.5 is "likely-real" at this operating point
    platform.platform.save()
    first, second = scanned_upload(platform, "r1"), scanned_upload(platform, "r2")
    assert first.scan_verdict == second.scan_verdict == "likely-real"
    review_decide(upload=second, reviewer=lead, label="real")  # reviewed uploads are not re-scored

    # The new model calls the same pictures AI at this platform's operating point.
    platform.platform.ai_threshold = 0.3
    platform.platform.save()
    candidate = ModelVersion.objects.create(
        name="coin", version="2", checkpoint_path=str(coin_model), status=ModelStatus.SHADOW, gate={"passed": True}
    )
    model_version_promote(model_version=candidate, acting_user=lead)
    rescore = RetroScan.objects.get(kind="model_rescore")
    rescore = retro_scan_run(retro_scan_id=rescore.pk)

    assert rescore.status == "done" and rescore.processed == 1
    assert [(hit["external_id"], hit["from"], hit["to"]) for hit in rescore.flagged] == [
        ("r1", "likely-real", "ai-generated")
    ]
    first.refresh_from_db()
    assert first.status == UploadStatus.NEEDS_REVIEW
    assert _tags(first) == {"likely-real": "auto"}  # tags wait for the moderator


def test_rescore_command_reports_changed_verdicts(coin_model, platform):
    platform.platform.ai_threshold = 0.7
    platform.platform.save()
    scanned_upload(platform, "cmd-1")
    platform.platform.ai_threshold = 0.3
    platform.platform.save()
    out = io.StringIO()
    call_command("rescore", "--days", "1", stdout=out)
    assert "done, 1 uploads scored" in out.getvalue()
    assert "cmd-1 likely-real → ai-generated" in out.getvalue()


def test_backfill_hashes_uploads_stored_before_pdq(coin_model, platform):
    from moderation.models import Upload

    upload = scanned_upload(platform, "old-upload")
    Upload.objects.filter(pk=upload.pk).update(pdq_hash="", pdq_quality=None)
    out = io.StringIO()
    call_command("hashbank", "backfill", stdout=out)
    assert "hashed 1 uploads" in out.getvalue()
    upload.refresh_from_db()
    assert len(upload.pdq_hash) == 64 and upload.pdq_quality >= 50


def test_a_read_once_block_reads_each_bank_once_and_sees_it_as_at_its_start(platform):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hashbank.services import hash_bank_matches, hash_banks_read_once

    first, second = "f" * 64, "0" * 64
    HashBankEntry.objects.create(platform=platform.platform, pdq_hash=first, note="imported")
    with hash_banks_read_once():
        with CaptureQueriesContext(connection) as queries:
            assert [match["kind"] for match in hash_bank_matches(platform=platform.platform, pdq_hash=first)] == [
                "known_fake_match"
            ]
            assert hash_bank_matches(platform=platform.platform, pdq_hash=second) == []
        bank_reads = [query for query in queries if "moderation_hashbankentry" in query["sql"]]
        assert len([query for query in bank_reads if '"id" >' in query["sql"]]) == 1, "topped up once, not per lookup"
        HashBankEntry.objects.create(platform=platform.platform, pdq_hash=second, note="imported")
        assert hash_bank_matches(platform=platform.platform, pdq_hash=second) == [], "as at the block's start"
    assert len(hash_bank_matches(platform=platform.platform, pdq_hash=second)) == 1, "seen at the next lookup after it"


def test_a_fake_confirmed_today_reopens_an_earlier_copy_a_moderator_called_real(
    coin_model, platform, lead, django_capture_on_commit_callbacks
):
    """The platform must never see `real` beside `known-fake-match`: the earlier decision goes back to the queue, where
    calling it real again means overruling the match."""
    earlier_copy = scanned_upload(platform, "yesterday", image=photo_bytes(3, quality=60))
    review_decide(upload=earlier_copy, reviewer=lead, label="real")
    called_ai = scanned_upload(platform, "also-yesterday", image=photo_bytes(3, quality=70))
    review_decide(upload=called_ai, reviewer=lead, label="ai-generated")

    today = scanned_upload(platform, "today", image=photo_bytes(3))
    _confirm_fake(today, lead, django_capture_on_commit_callbacks)

    earlier_copy.refresh_from_db()
    assert earlier_copy.status == UploadStatus.NEEDS_REVIEW and earlier_copy.review_priority >= 500
    assert _tags(earlier_copy) == {"real": "reviewer"}, "no known-fake-match beside the reviewer's real"
    assert earlier_copy.evidence[-1]["detail"]["original_upload_id"] == str(today.pk)
    called_ai.refresh_from_db()
    assert called_ai.status == UploadStatus.REVIEWED, "a decision the match agrees with stands"
    assert _tags(called_ai) == {"ai-generated": "reviewer", "known-fake-match": "provenance"}


def test_overturning_a_confirmed_fake_withdraws_the_matches_it_made(
    coin_model, platform, lead, django_capture_on_commit_callbacks
):
    """A copy tagged AI only because it matched a fake that a moderator later found real must not stay accused: the
    match stays on record, withdrawn, the tags go, and the copy goes back to review."""
    original = scanned_upload(platform, "fake-1", image=photo_bytes(1))
    _confirm_fake(original, lead, django_capture_on_commit_callbacks)
    copy = scanned_upload(platform, "copy", image=photo_bytes(1, quality=60))
    assert copy.status == UploadStatus.TAGGED
    assert _tags(copy) == {"ai-generated": "provenance", "known-fake-match": "provenance"}

    with django_capture_on_commit_callbacks(execute=True):  # runs the withdrawal the decision queues
        review_decide(upload=original, reviewer=lead, label="real")

    copy.refresh_from_db()
    assert copy.status == UploadStatus.NEEDS_REVIEW
    assert "known-fake-match" not in _tags(copy)
    [match] = [finding for finding in copy.evidence if finding["kind"] == "known_fake_match"]
    assert match["detail"]["withdrawn"] == "the confirmed fake it matched was overturned"
    # Deciding the copy real no longer needs the match overruled; a new copy no longer matches anything.
    review_decide(upload=copy, reviewer=lead, label="real")
    fresh = scanned_upload(platform, "copy-after", image=photo_bytes(1, quality=70))
    assert not [finding for finding in fresh.evidence if finding["kind"] == "known_fake_match"]
    from scanning.rescans import known_fake_matches_withdraw

    assert known_fake_matches_withdraw(entry_ids=[match["detail"]["entry_id"]]) == [], "safe to run twice"


def test_a_broker_outage_does_not_leave_an_overturned_fakes_matches_in_force(
    coin_model, platform, lead, django_capture_on_commit_callbacks, monkeypatch
):
    from kombu.exceptions import OperationalError

    from scanning import tasks

    original = scanned_upload(platform, "fake-1", image=photo_bytes(1))
    _confirm_fake(original, lead, django_capture_on_commit_callbacks)
    copy = scanned_upload(platform, "copy", image=photo_bytes(1, quality=60))

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.known_fake_matches_withdraw, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(upload=original, reviewer=lead, label="real")
    copy.refresh_from_db()
    assert copy.status == UploadStatus.NEEDS_REVIEW and "known-fake-match" not in _tags(copy)
