"""Downscaled JPEG previews for the queue's grid, made once per upload and kept in Django's cache."""

from __future__ import annotations

import io
import logging

from django.core.cache import cache
from PIL import Image, ImageOps

from moderation.conf import app_setting
from moderation.models import Upload

logger = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320  # two device pixels per CSS pixel of the 160 px grid cell
_CACHE_SECONDS = 7 * 24 * 3600
# Cached for files that cannot be previewed, so a broken upload is not decoded again on every page view.
_NO_PREVIEW = b""


def thumbnail_jpeg(upload: Upload) -> bytes | None:
    """The upload's picture at most THUMBNAIL_SIDE px on its long side, or None where the file cannot be decoded.
    A stored upload never changes, so its id is the cache key."""
    key = f"admin_ui:thumbnail:{THUMBNAIL_SIDE}:{upload.pk}"
    try:
        data = cache.get(key)
    except Exception:  # the cache (Redis) is down: make the preview anyway rather than break the grid
        logger.warning("thumbnail cache unavailable", exc_info=True)
        return _render(upload) or None
    if data is None:
        data = _render(upload)
        cache.set(key, data, timeout=_CACHE_SECONDS)
    return data or None


def _render(upload: Upload) -> bytes:
    try:
        with upload.image.open("rb") as handle, Image.open(handle) as image:
            if image.width * image.height > app_setting("MAX_IMAGE_PIXELS"):
                return _NO_PREVIEW  # checked from the header, before anything is decoded
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # JPEG decodes at 1/2 to 1/8 scale: much cheaper
            preview = ImageOps.exif_transpose(image)  # as browsers show the original
            preview.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            if preview.mode != "RGB":
                background = Image.new("RGB", preview.size, (128, 128, 128))
                rgba = preview.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                preview = background
            buffer = io.BytesIO()
            preview.save(buffer, "JPEG", quality=80, optimize=True)
            return buffer.getvalue()
    except Exception as exc:  # hostile or unsupported bytes: the grid shows the id without a picture
        logger.info("no thumbnail for upload %s: %s", upload.pk, exc)
        return _NO_PREVIEW
