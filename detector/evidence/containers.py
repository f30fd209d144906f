"""Walk JPEG, PNG and WebP containers for their metadata blocks without decoding a pixel.

Walking the bytes ourselves (instead of asking Pillow) lets every block be size-checked before it is read or
decompressed, and finds text chunks wherever they sit, including after the image data.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field

from PIL import Image

from .findings import Finding, failed

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\x00"
# Past this many text chunks a PNG is hostile, not descriptive; the rest are ignored.
_MAX_TEXT_CHUNKS = 64


@dataclass
class Metadata:
    """The metadata blocks of one file, each tagged with where it came from (`png:tEXt`, `jpeg:APP1`...)."""

    mime: str
    exif: list[tuple[str, bytes]] = field(default_factory=list)
    xmp: list[tuple[str, bytes]] = field(default_factory=list)
    text: list[tuple[str, str, str]] = field(default_factory=list)  # (container, key, value)
    jumbf_bytes: int = 0
    problems: list[Finding] = field(default_factory=list)


def sniff_mime(data: bytes) -> str | None:
    """The image type the leading bytes announce, or None when they announce no image we know."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "image/avif" if data[8:12] in (b"avif", b"avis") else "image/heic"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def read_metadata(data: bytes, mime: str, *, max_bytes: int) -> Metadata:
    meta = Metadata(mime=mime)
    walker = {"image/jpeg": _walk_jpeg, "image/png": _walk_png, "image/webp": _walk_webp}.get(mime, _read_with_pillow)
    walker(data, meta, max_bytes)
    return meta


def _walk_jpeg(data: bytes, meta: Metadata, max_bytes: int) -> None:
    pos, end_of_data = 2, len(data)
    while pos + 4 <= end_of_data:
        if data[pos] != 0xFF:
            meta.problems.append(failed("jpeg", "corrupt segment marker", offset=pos))
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: metadata only lives before the scan
            return
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end_of_data:
            meta.problems.append(failed("jpeg", "truncated segment", marker=f"0x{marker:02X}", offset=pos))
            return
        payload = data[pos + 4 : segment_end]
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            meta.exif.append(("exif", payload))
        elif marker == 0xE1 and payload.startswith(_XMP_NAMESPACE):
            meta.xmp.append(("xmp", payload[len(_XMP_NAMESPACE) :]))
        elif marker == 0xEB:  # APP11 carries JUMBF, i.e. C2PA manifests
            meta.jumbf_bytes += length
        pos = segment_end
    if pos < end_of_data:
        meta.problems.append(failed("jpeg", "truncated before the image data", offset=pos))


def _walk_png(data: bytes, meta: Metadata, max_bytes: int) -> None:
    pos, end_of_data, text_chunks, text_budget = 8, len(data), 0, max_bytes
    while pos + 12 <= end_of_data:
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        start, chunk_end = pos + 8, pos + 8 + length
        if chunk_end + 4 > end_of_data:
            meta.problems.append(failed("png", "truncated chunk", chunk=chunk_type.decode("latin-1"), offset=pos))
            return
        if chunk_type == b"IEND":
            return
        if chunk_type == b"caBX":  # C2PA manifest store
            meta.jumbf_bytes += length
        elif chunk_type in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
            source = f"png:{chunk_type.decode()}"
            text_chunks += 1
            if length > text_budget or text_chunks > _MAX_TEXT_CHUNKS:
                meta.problems.append(_too_large(source, length, max_bytes))
            elif chunk_type == b"eXIf":
                meta.exif.append(("exif", data[start:chunk_end]))
            else:
                text_budget -= length
                try:
                    _add_png_text(chunk_type, data[start:chunk_end], meta, source, max_bytes)
                except (ValueError, zlib.error) as exc:
                    meta.problems.append(failed(source, f"unreadable text chunk: {exc}"))
        pos = chunk_end + 4  # skip the CRC
    meta.problems.append(failed("png", "truncated: no IEND chunk"))


def _add_png_text(chunk_type: bytes, body: bytes, meta: Metadata, source: str, max_bytes: int) -> None:
    key_bytes, sep, rest = body.partition(b"\x00")
    if not sep or not 0 < len(key_bytes) < 80:
        meta.problems.append(failed(source, "malformed text chunk"))
        return
    key = key_bytes.decode("latin-1")
    if chunk_type == b"tEXt":
        value = rest.decode("latin-1")
    elif chunk_type == b"zTXt":
        value = _inflate(rest[1:], max_bytes).decode("latin-1")
    else:  # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
        if len(rest) < 2:
            meta.problems.append(failed(source, "malformed text chunk", key=key))
            return
        compressed, rest = rest[0], rest[2:]
        _language, _, rest = rest.partition(b"\x00")
        _translated, _, text = rest.partition(b"\x00")
        value = (_inflate(text, max_bytes) if compressed else text).decode("utf-8", "replace")
    if key == "XML:com.adobe.xmp":
        meta.xmp.append((source, value.encode("utf-8")))
    else:
        meta.text.append((source, key, value))


def _inflate(compressed: bytes, max_bytes: int) -> bytes:
    """zlib-decompress at most `max_bytes`: a zip bomb stops at the limit instead of filling memory."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(compressed, max_bytes)
    if inflater.unconsumed_tail:
        raise ValueError(f"compressed text inflates past {max_bytes} bytes")
    return out


def _walk_webp(data: bytes, meta: Metadata, max_bytes: int) -> None:
    pos, end_of_data = 12, len(data)
    while pos + 8 <= end_of_data:
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        start, chunk_end = pos + 8, pos + 8 + size
        if chunk_end > end_of_data:
            meta.problems.append(failed("webp", "truncated chunk", chunk=fourcc.decode("latin-1"), offset=pos))
            return
        source = f"webp:{fourcc.decode('latin-1').strip()}"
        if fourcc in (b"EXIF", b"XMP ") and size > max_bytes:
            meta.problems.append(_too_large(source, size, max_bytes))
        elif fourcc == b"EXIF":
            meta.exif.append(("exif", data[start:chunk_end]))
        elif fourcc == b"XMP ":
            meta.xmp.append(("xmp", data[start:chunk_end]))
        elif fourcc == b"C2PA":
            meta.jumbf_bytes += size
        pos = chunk_end + (size & 1)  # chunks are padded to even sizes


def _read_with_pillow(data: bytes, meta: Metadata, max_bytes: int) -> None:
    """HEIC, AVIF, TIFF, GIF: Pillow's lazy open reads the header blocks without decoding pixels."""
    with Image.open(io.BytesIO(data)) as image:
        exif, xmp = image.info.get("exif"), image.info.get("xmp")
        if exif is None and image.format == "TIFF":  # a TIFF's EXIF is its own first IFD
            exif = image.getexif().tobytes()
    for source, block, bucket in (("exif", exif, meta.exif), ("xmp", xmp, meta.xmp)):
        if not isinstance(block, bytes | bytearray) or not block:
            continue
        if len(block) > max_bytes:
            meta.problems.append(_too_large(source, len(block), max_bytes))
        else:
            bucket.append((source, bytes(block)))


def _too_large(source: str, size: int, limit: int) -> Finding:
    return failed(source, "metadata over the size limit", block_bytes=size, limit=limit)
