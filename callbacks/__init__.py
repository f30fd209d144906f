"""Outbound delivery: signed `upload.*` events to each platform's callback URL, recorded first, retried, never lost."""
