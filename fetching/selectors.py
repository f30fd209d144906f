"""The fetch stage's reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models.functions import Coalesce, Length

from moderation.models import Upload

# A batch's held bytes are read this much at a time at most (a batch holds up to 500 uploads of up to
# MAX_IMAGE_BYTES each); one upload over it is read alone.
HELD_BYTES_PER_READ = 32 * 1024 * 1024


def uploads_for_fetch(upload_ids: Iterable[Any]) -> Iterator[tuple[str, Upload | None]]:
    """Each id (as text) in the order given, with its upload (None if it no longer exists) and what fetching it needs:
    the platform (the hash bank's scope) and the bytes the webhook held, if any.

    Read in as few queries as keep each under HELD_BYTES_PER_READ of held bytes (one, for a batch of photos), plus one
    for their sizes where there are several; a generator, so only that much is in memory at once.
    """
    ids = [str(upload_id) for upload_id in upload_ids]
    sizes: dict[str, int] = {}
    if len(ids) > 1:
        held = Coalesce(Length("pending_image__data"), 0)
        sizes = {str(pk): size for pk, size in Upload.objects.filter(pk__in=ids).values_list("pk", held)}
    group: list[str] = []
    group_bytes = 0
    for upload_id in [*ids, None]:
        size = sizes.get(upload_id, 0) if upload_id is not None else 0
        if group and (upload_id is None or group_bytes + size > HELD_BYTES_PER_READ):
            read = Upload.objects.select_related("platform", "pending_image").filter(pk__in=group)
            uploads = {str(upload.pk): upload for upload in read}
            yield from ((member, uploads.get(member)) for member in group)
            group, group_bytes = [], 0
        if upload_id is not None:
            group.append(upload_id)
            group_bytes += size
