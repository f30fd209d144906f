"""Decisions platforms can account for (EU DSA): per-platform decision policy, statements of reasons, their submission
to the Commission's DSA Transparency Database."""
