"""Migrations against the real TimescaleDB server."""

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from wearable_assets.rollups.refresh import CONTINUOUS_AGGREGATES, refresh_continuous_aggregates
from wearable_assets.storage import migrations
from wearable_assets.storage.local_server import temporary_database
from wearable_assets.storage.resources import TimescaleResource


def test_migrations_apply_twice_without_change(timescale: TimescaleResource) -> None:
    with psycopg.connect(timescale.dsn, autocommit=True) as conn:
        before = conn.execute("SELECT version, checksum, applied_at FROM wearables.schema_migrations ORDER BY 1").fetchall()
        report = migrations.migrate(conn)
        after = conn.execute("SELECT version, checksum, applied_at FROM wearables.schema_migrations ORDER BY 1").fetchall()
    assert report.applied == []
    assert before == after
    assert [v for v, *_ in after][:2] == ["001", "002"]


def test_extension_present_and_intraday_is_a_hypertable(timescale: TimescaleResource) -> None:
    (version,) = timescale.fetch("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")[0]
    assert version.split(".")[0] == "2"
    rows = timescale.fetch(
        "SELECT hypertable_schema, hypertable_name FROM timescaledb_information.hypertables "
        "WHERE hypertable_name = 'fitbit_intraday'"
    )
    assert rows == [("wearables", "fitbit_intraday")]
    (interval,) = timescale.fetch(
        "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'fitbit_intraday'"
    )[0]
    assert interval.days == 1


TSL_MIGRATIONS = [m for m in migrations.discover() if m.requires_tsl]


@pytest.fixture
def fresh_db(timescale_dsn: str) -> Iterator[str]:
    """An empty database of its own on the test server: the real migrations (wearable_assets/sql/) are
    applied to it by the test, and whatever they create (TSL objects on a 'timescale' server) is dropped after."""
    with temporary_database(timescale_dsn, f"wearables_test_{os.getpid()}_tsl") as dsn:
        yield dsn


def test_license_detection_drives_which_migrations_run(
    fresh_db: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TSL_MIGRATIONS, "wearable_assets/sql/tsl/ holds the Timescale-licensed migrations"
    tsl_versions = [m.version for m in TSL_MIGRATIONS]
    monkeypatch.setattr(migrations, "_reported_skips", set())  # skips are logged once per process
    caplog.set_level(logging.INFO, logger=migrations.__name__)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        report = migrations.migrate(conn)
        (shown,) = conn.execute("SHOW timescaledb.license").fetchone()
        recorded = {r[0] for r in conn.execute("SELECT version FROM wearables.schema_migrations").fetchall()}
    assert shown in ("apache", "timescale")
    assert report.license == shown == TimescaleResource(dsn=fresh_db).license()
    plain = [m.version for m in migrations.discover() if not m.requires_tsl]
    assert report.applied[: len(plain)] == plain
    skip_logs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping migration")]
    aggregates = refresh_continuous_aggregates(TimescaleResource(dsn=fresh_db), [])
    if shown == "timescale":
        assert report.applied[len(plain):] == tsl_versions and report.skipped == {}
        assert set(tsl_versions) <= recorded and skip_logs == []
        assert aggregates.skipped_reason is None
    else:
        reason = f"needs timescaledb.license='timescale', server has '{shown}'"
        assert report.skipped == {v: reason for v in tsl_versions}
        assert not set(tsl_versions) & recorded  # re-considered on the next run, not marked applied
        assert skip_logs == [f"skipping migration {m.path.name}: {reason}" for m in TSL_MIGRATIONS]
        assert aggregates.refreshed == [] and f"timescaledb.license is '{shown}'" in (aggregates.skipped_reason or "")


def _statements(sql_text: str) -> list[str]:
    """Split a migration file into statements (the files keep ';' and '--' out of literals)."""
    body = re.sub(r"--[^\n]*", "", sql_text)
    statements = [s.strip() for s in body.split(";") if s.strip()]
    assert all(s.count("'") % 2 == 0 for s in statements), "a literal holds ';' or '--': split by hand"
    return statements


_CAGG = re.compile(
    r"CREATE MATERIALIZED VIEW (?P<name>[\w.]+)\s+WITH \(timescaledb\.continuous\)\s+AS\s+(?P<query>.*?)\s+WITH NO DATA",
    re.S | re.I,
)


@pytest.mark.parametrize("migration", TSL_MIGRATIONS, ids=[m.path.name for m in TSL_MIGRATIONS])
def test_tsl_statements_reach_the_license_gate(fresh_db: str, migration: migrations.Migration) -> None:
    """Apache edition: every statement of the file is refused by TimescaleDB's licence check,
    not by the parser or name resolution. 'timescale' licence: the file applies for real."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        migrations.migrate(conn)
        (license_,) = conn.execute("SHOW timescaledb.license").fetchone()
        if license_ == "timescale":
            applied = {r[0] for r in conn.execute("SELECT version FROM wearables.schema_migrations").fetchall()}
            assert migration.version in applied
            caggs = {r[0] for r in conn.execute(
                "SELECT view_schema || '.' || view_name FROM timescaledb_information.continuous_aggregates").fetchall()}
            expected = {m.group("name") for m in _CAGG.finditer(migration.sql)}
            assert expected and expected <= caggs
            assert caggs >= set(CONTINUOUS_AGGREGATES)
            return
        statements = _statements(migration.sql)
        assert statements
        refused: list[str] = []
        with conn.transaction(force_rollback=True):
            for statement in statements:
                with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
                    with conn.transaction():
                        conn.execute(statement)
                assert f'under the current "{license_}" license' in (err.value.diag.message_primary or ""), statement
                refused.append(statement.split("(")[0])
                cagg = _CAGG.fullmatch(statement)
                if cagg:
                    # Later statements (hierarchical aggregates, refresh policies) name this view:
                    # stand in for it with a plain view of the same query, which PostgreSQL fully
                    # analyses against the migrated tables (time_bucket is in the Apache edition).
                    conn.execute(f"CREATE VIEW {cagg.group('name')} AS {cagg.group('query')}")
        assert len(refused) == len(statements)
        # Nothing survived the rolled-back transaction.
        assert conn.execute("SELECT to_regclass('wearables.fitbit_intraday_1min')").fetchone() == (None,)


def _scratch_schema_dir(tmp_path: Path, tsl_sql: str) -> Path:
    (tmp_path / "tsl").mkdir()
    (tmp_path / "001_scratch.sql").write_text("CREATE TABLE wearables_scratch.t (id int);")
    (tmp_path / "tsl" / "001_scratch_tsl.sql").write_text(tsl_sql)
    return tmp_path


@pytest.fixture
def scratch_conn(timescale: TimescaleResource):
    """A connection whose migration table lives in a throw-away schema (search_path trick is not
    used: the runner always writes wearables.schema_migrations, so we clean our rows after)."""
    with psycopg.connect(timescale.dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS wearables_scratch CASCADE; CREATE SCHEMA wearables_scratch")
        saved = conn.execute("SELECT version, filename, checksum FROM wearables.schema_migrations").fetchall()
        conn.execute("DELETE FROM wearables.schema_migrations")
        yield conn
        conn.execute("DELETE FROM wearables.schema_migrations")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO wearables.schema_migrations (version, filename, checksum) VALUES (%s, %s, %s)", saved)
        conn.execute("DROP SCHEMA wearables_scratch CASCADE")


def test_tsl_migrations_are_gated_by_license(scratch_conn: psycopg.Connection, tmp_path: Path) -> None:
    sql_dir = _scratch_schema_dir(tmp_path, "CREATE TABLE wearables_scratch.tsl_only (id int);")
    report = migrations.migrate(scratch_conn, sql_dir)
    tables = {r[0] for r in scratch_conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'wearables_scratch'").fetchall()}
    assert report.applied[0] == "001"
    if report.license == "timescale":
        assert "tsl/001" in report.applied and "tsl_only" in tables
    else:
        assert "tsl/001" in report.skipped and "license" in report.skipped["tsl/001"]
        assert "tsl_only" not in tables
        # Skipped migrations are re-considered on every run, not recorded as applied.
        again = migrations.migrate(scratch_conn, sql_dir)
        assert again.applied == [] and "tsl/001" in again.skipped


def test_editing_an_applied_migration_is_refused(scratch_conn: psycopg.Connection, tmp_path: Path) -> None:
    sql_dir = _scratch_schema_dir(tmp_path, "SELECT 1;")
    migrations.migrate(scratch_conn, sql_dir)
    (sql_dir / "001_scratch.sql").write_text("CREATE TABLE wearables_scratch.t (id bigint);")
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.migrate(scratch_conn, sql_dir)


def test_failed_migration_rolls_back_and_is_not_recorded(scratch_conn: psycopg.Connection, tmp_path: Path) -> None:
    sql_dir = _scratch_schema_dir(tmp_path, "SELECT 1;")
    (sql_dir / "002_broken.sql").write_text("CREATE TABLE wearables_scratch.half (id int); SELEC broken;")
    with pytest.raises(psycopg.errors.SyntaxError):
        migrations.migrate(scratch_conn, sql_dir)
    versions = {r[0] for r in scratch_conn.execute("SELECT version FROM wearables.schema_migrations").fetchall()}
    assert versions == set()  # the whole run is one transaction: 001 is rolled back with 002
    assert scratch_conn.execute("SELECT to_regclass('wearables_scratch.half')").fetchone() == (None,)


def test_badly_named_migration_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "add_things.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="NNN_description.sql"):
        migrations.discover(tmp_path)
