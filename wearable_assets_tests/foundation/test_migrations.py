"""Migrations against the real TimescaleDB server."""

from pathlib import Path

import psycopg
import pytest

from wearable_assets.storage import migrations
from wearable_assets.storage.timescale import TimescaleResource


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


def test_license_detection_matches_server_setting(timescale: TimescaleResource) -> None:
    (shown,) = timescale.fetch("SHOW timescaledb.license")[0]
    assert timescale.license() == shown
    assert shown in ("apache", "timescale")


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
