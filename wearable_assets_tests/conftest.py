"""Shared fixtures: a real TimescaleDB database per test session, a lake folder, a Dagster instance.

The database fixture starts the project-local server itself (``scripts/timescaledb.sh``) when
no ``WEARABLES_TIMESCALE_DSN`` is given, and stops it again at the end if it was not running
before, so ``make test`` works on a fresh machine and leaves nothing behind.
Each session gets its own database (``wearables_test_<pid>``) so concurrent sessions and the
demo's data never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from wearable_assets import rate_limits, settings
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
from wearable_assets.storage.local_server import ensure_server, stop_server, temporary_database
from wearable_assets.storage.resources import LakeResource, TimescaleResource


@pytest.fixture(autouse=True)
def fresh_rate_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with unspent client-side budgets, as a new run process does: the
    limiters (``wearable_assets.rate_limits``) are process-wide and would otherwise count every
    request of the session (the legacy Fitbit one is hourly, CentrePoint's 500 a minute)."""
    monkeypatch.setattr(rate_limits, "_LIMITERS", {})


@pytest.fixture(scope="session")
def timescale_dsn() -> Iterator[str]:
    server_dsn, started_here = ensure_server()
    try:
        with temporary_database(server_dsn, f"wearables_test_{os.getpid()}") as dsn:
            yield dsn
    finally:
        if started_here:
            stop_server()


@pytest.fixture(scope="session")
def _migrated(timescale_dsn: str) -> str:
    TimescaleResource(dsn=timescale_dsn).migrate()
    return timescale_dsn


@pytest.fixture
def timescale(_migrated: str, monkeypatch: pytest.MonkeyPatch) -> TimescaleResource:
    """A migrated, empty ``wearables`` schema (every table truncated before the test)."""
    monkeypatch.setenv(settings.TIMESCALE_DSN_ENV, _migrated)
    with psycopg.connect(_migrated, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'wearables' AND tablename <> 'schema_migrations'"
            ).fetchall()
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(tables) + " CASCADE")
    return TimescaleResource(dsn=_migrated)


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LakeResource:
    root = tmp_path / "lake"
    monkeypatch.setenv(settings.LAKE_URL_ENV, str(root))
    return LakeResource(url=str(root))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A throw-away Dagster instance (not ``ephemeral()``: schedules and backfills need a ref)."""
    with dg.instance_for_test() as inst:
        yield inst


def add_participants(instance: dg.DagsterInstance, *participant_ids: str) -> None:
    instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, list(participant_ids))
