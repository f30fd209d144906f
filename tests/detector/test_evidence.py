"""The evidence extractor on fixtures the tests build themselves.

`fixtures/camera.jpg` is `jpg/Canon_PowerShot_A40.jpg` from drewnoakes/metadata-extractor-images ("free to use these
media files however you wish", via ../shared/datasets/camera_photos_real), resized to 640 px and re-saved at q80 with
only its Make, Model and DateTime EXIF tags.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from imwatermark import WatermarkDecoder, WatermarkEncoder
from PIL import Image, PngImagePlugin

from detector.evidence import Finding, extract_evidence, provenance
from detector.evidence.watermark import WATERMARKS

FIXTURES = Path(__file__).parent / "fixtures"
REAL_PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "camera_photos_real" / "real"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def test_evidence_imports_no_django():
    code = "import sys, detector.evidence; assert not [m for m in sys.modules if m.startswith('django')]"
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)


def _kinds(findings: list[Finding], kind: str) -> list[Finding]:
    return [finding for finding in findings if finding.kind == kind]


def _pixels(seed: int = 2, size: int = 512) -> np.ndarray:
    """A textured RGB image the size of a diffusion model's output."""
    rng = np.random.default_rng(seed)
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((size, size)))
    return np.clip(base.astype(int) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def _encode(image: Image.Image | np.ndarray, fmt: str, **params) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


# --- C2PA -----------------------------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evidence tests"),
        ]
    )


def _key_usage(**enabled: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    names += ("key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: enabled.get(name, False) for name in names})


@pytest.fixture(scope="module")
def c2pa_credentials() -> dict[str, str]:
    return make_c2pa_credentials()


def make_c2pa_credentials() -> dict[str, str]:
    """A throwaway CA and an ES256 signing certificate with the profile C2PA requires of a signer: not a CA,
    digitalSignature key usage, an accepted extended key usage (emailProtection), key identifiers."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=7)

    def certificate(subject: x509.Name, public_key, *, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder(subject_name=subject, issuer_name=_name("Evidence test CA"), public_key=public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    ca_cert = (
        certificate(_name("Evidence test CA"), ca_key.public_key(), ca=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    signer_cert = (
        certificate(_name("Evidence test signer"), key.public_key(), ca=False)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        "chain": (signer_cert.public_bytes(pem) + ca_cert.public_bytes(pem)).decode(),
        "key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        "anchor": ca_cert.public_bytes(pem).decode(),
    }


def _c2pa_jpeg(credentials: dict[str, str], *source_types: str) -> bytes:
    manifest = {
        "claim_generator_info": [{"name": "evidence-tests", "version": "1.0"}],
        "title": "upload.jpg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created" if not index else "c2pa.edited",
                            "digitalSourceType": IPTC + source_type,
                        }
                        for index, source_type in enumerate(source_types)
                    ]
                },
            }
        ],
    }
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, credentials["chain"].encode(), credentials["key"].encode(), None
    )
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    signed = io.BytesIO()
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context=context) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(_encode(_pixels(size=64), "JPEG")), signed)
    return signed.getvalue()


def test_c2pa_ai_declaration_is_strong_untrusted_and_decisive_trusted(c2pa_credentials):
    signed = _c2pa_jpeg(c2pa_credentials, "trainedAlgorithmicMedia")

    [finding] = _kinds(extract_evidence(signed), "c2pa")
    assert (finding.value, finding.ai, finding.strength) == ("trainedAlgorithmicMedia", True, "strong")
    assert finding.detail["validation_state"] == "Valid"  # intact, but the throwaway CA is nobody's trust anchor
    assert finding.detail["claim_generator"] == "evidence-tests 1.0"
    assert provenance(extract_evidence(signed)) == "ai-declared"

    trusted = extract_evidence(signed, c2pa_trust_anchors=c2pa_credentials["anchor"])
    [finding] = _kinds(trusted, "c2pa")
    assert (finding.strength, finding.detail["validation_state"]) == ("decisive", "Trusted")
    assert provenance(trusted) == "ai-declared"
    json.dumps([finding.as_dict() for finding in trusted])


def test_c2pa_camera_capture_counts_only_when_trusted(c2pa_credentials):
    signed = _c2pa_jpeg(c2pa_credentials, "digitalCapture")

    # Anyone can self-sign "digitalCapture" onto a fake: untrusted, it is as weak as camera EXIF.
    [finding] = _kinds(extract_evidence(signed), "c2pa")
    assert (finding.value, finding.ai, finding.strength) == ("digitalCapture", False, "weak")
    assert provenance(extract_evidence(signed)) == "none"

    trusted = extract_evidence(signed, c2pa_trust_anchors=c2pa_credentials["anchor"])
    assert [(f.value, f.ai, f.strength) for f in _kinds(trusted, "c2pa")] == [("digitalCapture", False, "decisive")]
    assert provenance(trusted) == "camera-declared"


def test_c2pa_manifest_edited_after_signing_stays_strong_evidence_of_ai(c2pa_credentials):
    signed = bytearray(_c2pa_jpeg(c2pa_credentials, "trainedAlgorithmicMedia"))
    signed[-10] ^= 0xFF  # a pixel byte: the data hash no longer matches

    [finding] = _kinds(extract_evidence(bytes(signed)), "c2pa")
    assert (finding.ai, finding.strength, finding.detail["validation_state"]) == (True, "strong", "Invalid")
    assert "assertion.dataHash.mismatch" in finding.detail["failures"]


def test_c2pa_photo_edited_with_generative_fill_is_ai_not_a_conflict(c2pa_credentials):
    signed = _c2pa_jpeg(c2pa_credentials, "digitalCapture", "compositeWithTrainedAlgorithmicMedia")

    findings = extract_evidence(signed, c2pa_trust_anchors=c2pa_credentials["anchor"])
    assert sorted((f.value, f.ai, f.strength) for f in _kinds(findings, "c2pa")) == [
        ("compositeWithTrainedAlgorithmicMedia", True, "decisive"),
        ("digitalCapture", False, "weak"),
    ]
    assert provenance(findings) == "ai-declared"


@pytest.mark.parametrize("offset", [60, 200])
def test_c2pa_manifest_with_garbage_inside_gives_a_failed_finding(c2pa_credentials, offset):
    signed = bytearray(_c2pa_jpeg(c2pa_credentials, "trainedAlgorithmicMedia"))
    app11 = signed.index(b"\xff\xeb")
    signed[app11 + offset : app11 + offset + 32] = bytes(range(200, 232))

    [finding] = extract_evidence(bytes(signed))
    assert (finding.kind, finding.source, finding.ai) == ("failed", "c2pa", None)
    assert finding.value.startswith("unreadable manifest: ")


def test_provenance_conflict_and_weak_evidence():
    ai = Finding("generator_metadata", "ComfyUI", "strong", "png:prompt", True, {})
    camera = Finding("c2pa", "digitalCapture", "decisive", "c2pa:actions", False, {})
    exif = Finding("camera_exif", "Canon EOS 5D", "weak", "exif:Make/Model", False, {})
    assert provenance([ai, camera]) == "conflict"
    assert provenance([camera, exif]) == "camera-declared"
    assert provenance([exif]) == "none"
    assert provenance([]) == "none"


# --- generator text chunks, XMP, EXIF -------------------------------------------------------------------------------

A1111_PARAMETERS = (
    "a photo of an astronaut riding a horse\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model: v1-5-pruned, Version: v1.9.4"
)
COMFYUI_PROMPT = json.dumps(
    {"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}}, "4": {"class_type": "CheckpointLoaderSimple"}}
)


@pytest.mark.parametrize(
    ("chunks", "generator", "source"),
    [
        ({"parameters": A1111_PARAMETERS}, "AUTOMATIC1111", "png:parameters"),
        ({"prompt": COMFYUI_PROMPT, "workflow": json.dumps({"nodes": [], "links": []})}, "ComfyUI", "png:prompt"),
        ({"invokeai_metadata": json.dumps({"positive_prompt": "a cat"})}, "InvokeAI", "png:invokeai_metadata"),
        (
            {"Software": "NovelAI", "Comment": json.dumps({"steps": 28, "sampler": "k_euler", "uc": "lowres"})},
            "NovelAI",
            "png:Comment",
        ),
    ],
)
def test_png_generator_text_chunks_name_the_generator(chunks, generator, source):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value, zip=key == "workflow")  # zip=True writes a compressed iTXt chunk
    findings = _kinds(extract_evidence(_encode(_pixels(size=64), "PNG", pnginfo=info)), "generator_metadata")

    assert (findings[0].value, findings[0].source, findings[0].strength, findings[0].ai) == (
        generator,
        source,
        "strong",
        True,
    )
    assert {finding.value for finding in findings} == {generator}
    if generator == "AUTOMATIC1111":
        assert findings[0].detail == {"excerpt": A1111_PARAMETERS, "webui_version": "v1.9.4"}


def test_a1111_parameters_in_exif_user_comment_of_a_jpeg():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111_PARAMETERS.encode("utf-16-be")  # how A1111 saves JPEG/WebP
    [finding] = _kinds(extract_evidence(_encode(_pixels(size=64), "JPEG", exif=exif)), "generator_metadata")
    assert (finding.value, finding.source) == ("AUTOMATIC1111", "exif:UserComment")


def _xmp(source_type: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f' Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}" xmp:CreatorTool="Midjourney v6"/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


@pytest.mark.parametrize(("fmt", "source"), [("JPEG", "xmp"), ("WEBP", "xmp"), ("PNG", "png:iTXt")])
def test_iptc_digital_source_type_in_xmp(fmt, source):
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", _xmp("trainedAlgorithmicMedia").decode())
        data = _encode(_pixels(size=64), fmt, pnginfo=info)
    else:
        data = _encode(_pixels(size=64), fmt, xmp=_xmp("trainedAlgorithmicMedia"))
    findings = extract_evidence(data)

    [finding] = _kinds(findings, "digital_source_type")
    assert finding == Finding(
        "digital_source_type", "trainedAlgorithmicMedia", "strong", f"{source}:Iptc4xmpExt:DigitalSourceType", True, {}
    )
    [tool] = _kinds(findings, "software")
    assert (tool.value, tool.ai, tool.detail) == ("Midjourney v6", True, {"generator": "Midjourney"})
    assert provenance(findings) == "ai-declared"


def test_exif_software_naming_a_generator_is_strong_other_software_weak():
    for software, strength, ai in (("Stable Diffusion XL", "strong", True), ("GIMP 2.10.36", "weak", None)):
        exif = Image.Exif()
        exif[0x0131] = software
        [finding] = _kinds(extract_evidence(_encode(_pixels(size=64), "JPEG", exif=exif)), "software")
        assert (finding.value, finding.strength, finding.ai, finding.source) == (
            software,
            strength,
            ai,
            "exif:Software",
        )


def test_camera_jpeg_exif_is_weak_and_never_clears_an_image():
    findings = extract_evidence((FIXTURES / "camera.jpg").read_bytes())
    assert [(f.kind, f.value, f.strength, f.ai) for f in findings] == [
        ("camera_exif", "Canon PowerShot A40", "weak", False)
    ]
    assert provenance(findings) == "none"


# --- Stable Diffusion's invisible watermark -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(WATERMARKS))
def test_sd_watermark_found_in_marked_image_only(name):
    pixels = _pixels()
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", WATERMARKS[name].astype(int).tolist())
    marked = np.ascontiguousarray(encoder.encode(np.ascontiguousarray(pixels[:, :, ::-1]), "dwtDct")[:, :, ::-1])

    [finding] = _kinds(extract_evidence(_encode(marked, "PNG")), "sd_watermark")
    assert (finding.value, finding.strength, finding.ai, finding.source) == (name, "strong", True, "watermark:dwtDct")
    assert _kinds(extract_evidence(_encode(pixels, "PNG")), "sd_watermark") == []


def test_watermark_decoder_agrees_with_imwatermark():
    """Our vectorised decode reads the reference library's embedding at least as well as the library itself."""
    pixels = _pixels(seed=3)
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", b"StableDiffusionV1")
    marked = encoder.encode(np.ascontiguousarray(pixels[:, :, ::-1]), "dwtDct")
    reference = WatermarkDecoder("bytes", 136).decode(marked, "dwtDct")
    expected = WATERMARKS["StableDiffusionV1"]
    reference_errors = int(np.count_nonzero(np.unpackbits(np.frombuffer(reference, np.uint8)).astype(bool) != expected))

    [finding] = _kinds(extract_evidence(_encode(np.ascontiguousarray(marked[:, :, ::-1]), "PNG")), "sd_watermark")
    assert finding.detail["bit_errors"] <= reference_errors


@pytest.mark.skipif(not REAL_PHOTOS.is_dir(), reason="../shared/datasets is not part of a fresh clone")
def test_no_sd_watermark_in_real_camera_photos():
    photos = sorted(REAL_PHOTOS.glob("*.jpg"))[:20]
    flagged = [photo.name for photo in photos if _kinds(extract_evidence(photo.read_bytes()), "sd_watermark")]
    assert len(photos) == 20
    assert flagged == []


# --- hostile input ----------------------------------------------------------------------------------------------------


def _png_chunk(chunk_type: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", zlib.crc32(chunk_type + body))


def _png_with(*chunks: bytes) -> bytes:
    plain = _encode(_pixels(size=32), "PNG")
    return plain[:33] + b"".join(chunks) + plain[33:]  # right after the signature and IHDR


def _jpeg_with_app11(payload: bytes) -> bytes:
    plain = _encode(_pixels(size=64), "JPEG")
    return plain[:2] + b"\xff\xeb" + struct.pack(">H", len(payload) + 2) + payload + plain[2:]


HOSTILE = {
    "truncated jpeg": _encode(_pixels(), "JPEG")[:5000],
    "random bytes": np.random.default_rng(0).bytes(4096),
    "empty": b"",
    "pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "5 MB text chunk": _png_with(_png_chunk(b"tEXt", b"parameters\x00" + b"Steps: 20, " * 500_000)),
    "zip bomb text chunk": _png_with(_png_chunk(b"zTXt", b"prompt\x00\x00" + zlib.compress(b"{" * 50_000_000, 9))),
    "deeply nested JSON prompt": _png_with(_png_chunk(b"tEXt", b"prompt\x00" + b"[" * 200_000)),
    "chunk length past the end": _png_with(b"\x7f\xff\xff\xfftEXtparameters\x00Steps: 20"),
    "garbage C2PA segment": _jpeg_with_app11(
        b"JP\x00\x01\x00\x00\x00\x01\x00\x00\x00\x28jumbc2pa" + bytes(range(256)) * 4
    ),
    "malformed XMP": _encode(_pixels(size=64), "JPEG", xmp=b"<x:xmpmeta DigitalSourceType=" + b"<" * 60_000),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_gives_failed_findings_never_an_exception(name):
    findings = extract_evidence(HOSTILE[name])
    assert all(finding.kind == "failed" and finding.ai is None for finding in findings), findings
    assert provenance(findings) == "none"
    json.dumps([finding.as_dict() for finding in findings])
    if name in ("random bytes", "empty", "pdf"):
        assert [f.value for f in findings] == ["not a recognised image format"]
    if name in ("truncated jpeg", "5 MB text chunk", "zip bomb text chunk", "chunk length past the end"):
        assert findings


def test_metadata_size_limit_is_configurable():
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    data = _encode(_pixels(size=64), "PNG", pnginfo=info)
    assert _kinds(extract_evidence(data), "generator_metadata")
    [finding] = extract_evidence(data, max_metadata_bytes=100)
    assert (finding.kind, finding.value, finding.source) == ("failed", "metadata over the size limit", "png:tEXt")
