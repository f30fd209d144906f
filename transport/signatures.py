"""Standard Webhooks signatures (https://www.standardwebhooks.com), via the reference `standardwebhooks` library.

Verification runs on the raw body before anything parses it; the library compares in constant time and enforces
the 5-minute timestamp window. Several secrets are accepted so a platform can rotate without downtime.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HEADER_NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")


class InvalidSignature(Exception):
    pass


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Raise InvalidSignature unless one of `secrets` signed exactly these bytes within the tolerance window."""
    wanted = {name: headers.get(name, "") for name in HEADER_NAMES}
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    if not secrets:
        raise InvalidSignature("platform has no webhook secret configured")
    last_error = "no matching signature"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
            return
        except WebhookVerificationError as exc:
            last_error = str(exc)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            # Malformed signature entries or a non-UTF-8 body: never valid, never a 500.
            last_error = "malformed signature header or body"
    raise InvalidSignature(last_error)


def sign(body: bytes, *, secret: str, msg_id: str, timestamp: datetime | None = None) -> dict[str, str]:
    """Headers that make `body` a valid Standard Webhooks delivery signed with `secret` (test clients, tools)."""
    return sign_with_each(body, secrets=[secret], msg_id=msg_id, timestamp=timestamp)


def sign_with_each(
    body: bytes, *, secrets: Sequence[str], msg_id: str, timestamp: datetime | None = None
) -> dict[str, str]:
    """Headers that make `body` a valid Standard Webhooks delivery under any one of `secrets`: one `v1,` signature per
    secret, space-separated, as the specification allows. Callbacks are signed this way while a secret rotation is open,
    so a receiver still verifying with the older secret accepts them, as does one that has switched."""
    when = timestamp or datetime.now(tz=UTC)
    signature = " ".join(Webhook(secret).sign(msg_id, when, body.decode()) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": signature}
