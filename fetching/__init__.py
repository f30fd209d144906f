"""The fetch stage: the image bytes stored (fetched from a URL or taken from the webhook), provenance evidence, the
perceptual hash and hash-bank matches; then the upload goes to the detect queue."""
