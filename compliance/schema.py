"""The DSA Transparency Database's statement schema (2025), vendored in `schemas/`, and what is read from it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schemas") / "tdb_statement.schema.json"


@functools.cache
def statement_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def territories() -> frozenset[str]:
    """The country codes the database accepts in `territorial_scope` (EU and EEA)."""
    return frozenset(statement_schema()["properties"]["territorial_scope"]["items"]["enum"])
