"""Client for the DSA Transparency Database's batch endpoint (`POST /api/v1/statements`, at most 100 statements).

Reads the answers the database gives (its API documentation and its source): 201 with the created statements; 422
with `errors.existing_puids` when some puids are already there (nothing is inserted); 422 with
`errors.statement_<index>` for invalid statements (nothing is inserted); 429 and 5xx are worth retrying later.
Never raises for network or HTTP failures: the answer says what happened.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

BATCH_PATH = "/api/v1/statements"
MAX_BATCH = 100


@dataclass
class BatchAnswer:
    status_code: int | None
    latency_ms: float
    # puid → the database's uuid for each statement it created.
    created: dict[str, str] = field(default_factory=dict)
    # puids the database already holds (the batch was refused whole).
    existing_puids: list[str] = field(default_factory=list)
    # index in the batch → the fields it refused and why (the batch was refused whole).
    invalid: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    error: str = ""

    @property
    def retry_later(self) -> bool:
        """No answer, rate limited, a server error, or the token refused (fixable by an operator): send again."""
        return self.status_code is None or self.status_code in (401, 403, 408, 429) or self.status_code >= 500

    @property
    def refused_as_invalid(self) -> bool:
        """A 4xx that is about the payload itself: sending the same statements again cannot succeed."""
        return (
            self.status_code is not None
            and 400 <= self.status_code < 500
            and not self.retry_later
            and not self.existing_puids
        )


def submit_batch(base_url: str, token: str, statements: list[dict[str, Any]], *, timeout: float = 30.0) -> BatchAnswer:
    if not 1 <= len(statements) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} statements, not {len(statements)}")
    body = json.dumps({"statements": statements}).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",  # without it the database may answer errors with a redirect
        "Content-Type": "application/json",
        "User-Agent": "ai-image-moderation/1",
    }
    started = time.perf_counter()
    http = urllib3.PoolManager(ca_certs=certifi.where(), retries=False, timeout=urllib3.Timeout(total=timeout))
    try:
        response = http.request("POST", base_url.rstrip("/") + BATCH_PATH, body=body, headers=headers, redirect=False)
    except Urllib3Error as exc:
        return BatchAnswer(None, (time.perf_counter() - started) * 1000, error=f"{type(exc).__name__}: {exc}")
    finally:
        http.clear()
    answer = BatchAnswer(response.status, (time.perf_counter() - started) * 1000)
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if response.status == 201:
        for item in data.get("statements") or []:
            if isinstance(item, dict) and item.get("puid"):
                answer.created[str(item["puid"])] = str(item.get("uuid") or "")
        return answer
    errors = data.get("errors") if isinstance(data.get("errors"), dict) else {}
    if response.status == 422 and errors.get("existing_puids"):
        answer.existing_puids = [str(puid) for puid in errors["existing_puids"]]
        answer.error = str(data.get("message") or "puids already in the database")
        return answer
    for key, fields in errors.items():
        if key.startswith("statement_") and key.removeprefix("statement_").isdigit() and isinstance(fields, dict):
            answer.invalid[int(key.removeprefix("statement_"))] = {k: list(v) for k, v in fields.items()}
    answer.error = (
        str(data.get("message") or "")
        or (json.dumps(errors)[:2000] if errors else "")
        or response.data[:500].decode("utf-8", "replace")
    )
    return answer
