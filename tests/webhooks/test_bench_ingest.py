"""`manage.py bench_ingest` on PostgreSQL + Redis: ours and the ceiling from one run, every upload scanned (and, with
--callbacks, called back) after draining, and each stage's CPU (its own and PostgreSQL's) measured."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection


@pytest.fixture
def bench_database_url(db: None):
    """A database of the bench's own (it migrates it and adds its platform), dropped afterwards."""
    settings = connection.settings_dict
    name = f"bench_{uuid.uuid4().hex[:8]}"
    server = f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/postgres"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.services
@pytest.mark.timeout(600)
def test_bench_ingest_reports_the_ceiling_and_each_stage(bench_database_url, settings):
    out = StringIO()
    call_command(
        "bench_ingest",
        "--database-url", bench_database_url,
        "--broker-url", settings.CELERY_BROKER_URL,
        "--requests", "40", "--warmup", "10", "--rounds", "2", "--concurrency", "4", "--callbacks",
        stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    assert result["statuses"] == {"202": 40} and result["errors"] == {}
    assert result["ceiling"]["errors"] == {} and result["ceiling"]["req_per_s"] > 0
    ours, ceiling = result["req_per_s"], result["ceiling"]["req_per_s"]
    # The ratio comes from the unrounded rates, the printed rates are rounded to 0.1 req/s: allow for both roundings
    # (a slow run's few dozen req/s put that beyond 1e-3).
    rounding = ours / ceiling * (0.05 / ours + 0.05 / ceiling) + 5e-4
    assert result["ratio_to_ceiling"] == pytest.approx(ours / ceiling, abs=rounding)
    assert len(result["ratio_by_round"]) == 2
    assert result["drain"]["detect"]["with_scan"] == 50, "every upload, warm-up included, scanned"
    assert result["callbacks"] and result["drain"]["detect"]["callbacks"] == {"delivered": 50}, "and called back"
    assert set(result["cpu_ms_per_upload"]) == {"web", "fetch", "detect"}
    assert all(ms > 0 for ms in result["cpu_ms_per_upload"].values())
    # PostgreSQL runs on this machine, so its own CPU is read per stage (in clock ticks: a short stage may read 0).
    database_ms = result["database_cpu_ms_per_upload"]
    assert set(database_ms) == {"web", "fetch", "detect"}
    assert all(ms >= 0 for ms in database_ms.values()) and sum(database_ms.values()) > 0
    # The timed load's own figures, reported with or without draining.
    assert result["web_cpu_ms_per_request"] == result["cpu_ms_per_upload"]["web"] > 0
    assert result["database_cpu_ms_per_request"] == database_ms["web"]
