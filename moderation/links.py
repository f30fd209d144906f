"""Links to an upload that every stage hands out (`status_url`, `heatmap_url`), by URL name: the lookup app that
serves them sits above every stage and is never imported."""

from urllib.parse import quote

from django.urls import reverse


def upload_lookup_url(external_id: str, *, heatmap: bool = False) -> str:
    """The lookup path of an upload, its id percent-encoded as one segment.

    `reverse()` would leave "/" literal, and clients normalise dot segments, so an id such as "a/../b" would reach
    another upload; "%2F" travels intact and Django decodes it back before routing.
    """
    path_ = f"{reverse('upload-list')}/{quote(external_id, safe='')}"
    return f"{path_}/heatmap" if heatmap else path_
