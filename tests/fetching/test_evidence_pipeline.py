"""Evidence beyond pixels through the real path: signed webhook → fetch stage (evidence, PDQ) → detect stage (policy)
→ tags, lookup API and console. The active model is the coin model (every score 0.5, which alone means
needs-review), so whatever decides `ai-generated` here is the evidence."""

from __future__ import annotations

import numpy as np
import pytest
from imwatermark import WatermarkEncoder
from PIL import PngImagePlugin

from detector.evidence.watermark import WATERMARKS
from tests.conftest import api_get, post_webhook, signed_headers, upload_body
from tests.detector.test_evidence import FIXTURES, _c2pa_jpeg, _encode, _pixels, _xmp, make_c2pa_credentials

pytestmark = pytest.mark.django_db


def _a1111_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat on a sofa\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 1")
    return _encode(_pixels(size=128), "PNG", pnginfo=info)


def _sd_watermarked_png() -> bytes:
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", WATERMARKS["StableDiffusionV1"].astype(int).tolist())
    pixels = _pixels()
    marked = encoder.encode(np.ascontiguousarray(pixels[:, :, ::-1]), "dwtDct")[:, :, ::-1]
    return _encode(np.ascontiguousarray(marked), "PNG")


FIXTURE_CASES = {
    "c2pa_trained_algorithmic_media": (
        lambda: _c2pa_jpeg(make_c2pa_credentials(), "trainedAlgorithmicMedia"),
        ("c2pa", "trainedAlgorithmicMedia"),
        {"ai-generated", "provenance:ai-declared", "provenance:c2pa"},
    ),
    "a1111_parameters_png": (
        _a1111_png,
        ("generator_metadata", "AUTOMATIC1111"),
        {"ai-generated", "provenance:ai-declared"},
    ),
    "iptc_digital_source_type_xmp": (
        lambda: _encode(_pixels(size=128), "JPEG", xmp=_xmp("trainedAlgorithmicMedia")),
        ("digital_source_type", "trainedAlgorithmicMedia"),
        {"ai-generated", "provenance:ai-declared"},
    ),
    "sd_watermark": (
        _sd_watermarked_png,
        ("sd_watermark", "StableDiffusionV1"),
        {"ai-generated", "provenance:ai-declared"},
    ),
    "camera_jpeg": (
        lambda: (FIXTURES / "camera.jpg").read_bytes(),
        ("camera_exif", "Canon PowerShot A40"),
        {"needs-review"},  # weak evidence never clears an image: the pixels decide
    ),
}


@pytest.mark.parametrize("case", list(FIXTURE_CASES))
def test_each_fixture_yields_its_evidence_and_tags(
    client, coin_model, platform, django_capture_on_commit_callbacks, case
):
    build, (kind, value), tags = FIXTURE_CASES[case]
    body = upload_body(case, image=build())
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    assert response.status_code == 202

    result = api_get(client, f"/api/v1/uploads/{case}", platform.api_token).json()
    assert (kind, value) in {(f["kind"], f["value"]) for f in result["evidence"]}
    assert {tag["name"] for tag in result["tags"]} == tags
    if "provenance:ai-declared" in tags:
        [verdict_tag] = [tag for tag in result["tags"] if tag["name"] == "ai-generated"]
        assert verdict_tag["source"] == "provenance"
        assert result["verdict"]["label"] == "ai-generated"
        assert result["verdict"]["decided_by"] == "provenance"
    else:
        assert result["verdict"]["decided_by"] == "pixels"


def test_console_item_page_shows_the_evidence(client, coin_model, platform, django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from moderation.models import Upload

    body = upload_body("a1111", image=_a1111_png())
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret))
    lead = get_user_model().objects.create_user("leo")
    lead.groups.add(Group.objects.get(name="lead"))
    client.force_login(lead)
    page = client.get(f"/console/uploads/{Upload.objects.get(external_id='a1111').pk}/").content.decode()
    assert "generator_metadata" in page and "AUTOMATIC1111" in page and "png:parameters" in page


@pytest.mark.services
def test_evidence_through_postgres_redis_and_a_worker_process(client, platform, celery_worker_process):
    """The same fixtures through a real `celery worker` (shipped model, PostgreSQL, Redis)."""
    from tests.conftest import wait_for

    for case, (build, _, _) in FIXTURE_CASES.items():
        body = upload_body(case, image=build())
        assert post_webhook(client, "acme", body, signed_headers(body, platform.webhook_secret)).status_code == 202

    def all_scanned():
        results = {
            case: api_get(client, f"/api/v1/uploads/{case}", platform.api_token).json() for case in FIXTURE_CASES
        }
        return results if all(r["verdict"] for r in results.values()) else None

    for case, result in wait_for(all_scanned, timeout=90).items():
        _, (kind, value), tags = FIXTURE_CASES[case]
        assert (kind, value) in {(f["kind"], f["value"]) for f in result["evidence"]}, case
        if "provenance:ai-declared" in tags:
            assert {t["name"]: t["source"] for t in result["tags"]}["ai-generated"] == "provenance", case
