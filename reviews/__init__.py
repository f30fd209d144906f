"""Moderators' decisions: claims, single and bulk decisions, thresholds, console roles; the review queue's reads."""
