"""Outbound and signed HTTP, shared by the pipeline's stages: a fetch that refuses private addresses (SSRF),
a signed POST for callbacks, Standard Webhooks signing and verification. Plain Python: no Django, no app imports."""
