"""Versioned SQL migrations from the package's ``sql/`` folder, applied in order, each exactly once.

Why not a migration framework: the schema is a handful of files and TimescaleDB DDL
(``create_hypertable``) is plain SQL; what matters is ordering, once-only, transactions and a
licence gate, which fit in this module. Files under ``sql/tsl/`` use Timescale-licensed
features (continuous aggregates, compression) and are applied only where
``timescaledb.license = 'timescale'``; elsewhere they are skipped with a logged reason and
re-considered on the next run (so moving to a TSL server later picks them up).

The files are package data (``wearable_assets/sql/``) read through ``importlib.resources``, so an
installed wheel migrates without the source checkout; every ``NNN_*.sql`` file found there is a
migration, none is listed by name.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg

log = logging.getLogger(__name__)
#: Skips already reported by this process: every run checks migrations, the reason is said once.
_reported_skips: set[str] = set()

SQL_DIR: Traversable = resources.files("wearable_assets") / "sql"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Any number: only serialises concurrent migrators of this project.
_ADVISORY_LOCK_ID = 7_401_202_611


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str  # "001" or "tsl/001"
    path: Traversable  # a pathlib.Path for an unpacked install or a test's own folder
    requires_tsl: bool

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(sql_dir: Traversable = SQL_DIR) -> list[Migration]:
    if not sql_dir.is_dir():
        # An install without its package data would otherwise "migrate" nothing and look fine.
        raise MigrationError(f"{sql_dir}: the migrations folder is missing (package data not installed?)")
    found: list[Migration] = []
    for folder, tsl in ((sql_dir, False), (sql_dir / "tsl", True)):
        files = [f for f in folder.iterdir() if f.name.endswith(".sql") and f.is_file()] if folder.is_dir() else []
        for path in sorted(files, key=lambda f: f.name):
            match = _NAME.match(path.name)
            if not match:
                raise MigrationError(f"{path}: migration files are named NNN_description.sql")
            version = f"tsl/{match.group(1)}" if tsl else match.group(1)
            found.append(Migration(version=version, path=path, requires_tsl=tsl))
    # Plain migrations first, then TSL ones: the latter build on tables the former create.
    return sorted(found, key=lambda m: (m.requires_tsl, m.version))


def timescale_license(conn: psycopg.Connection) -> str | None:
    """``'apache'`` or ``'timescale'``; None before the extension exists in this database
    (the setting is defined by the extension's library, not by the preloaded loader)."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return row[0] if row and row[0] else None


def ensure_extension(conn: psycopg.Connection) -> str:
    """Create the timescaledb extension if needed and return the licence it runs under."""
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        raise MigrationError(
            "the timescaledb extension is not installed on this PostgreSQL server: run `make db` for the "
            "project-local server, or install TimescaleDB on yours (see README, 'Your own TimescaleDB')"
        )
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        raise MigrationError(
            f"could not create the timescaledb extension ({exc.diag.message_primary}); the server needs "
            "shared_preload_libraries = 'timescaledb' and a role allowed to create extensions"
        ) from exc
    license_ = timescale_license(conn)
    if license_ is None:
        raise MigrationError("timescaledb is installed but timescaledb.license is not set; is the library preloaded?")
    return license_


@dataclass
class MigrationReport:
    applied: list[str]
    skipped: dict[str, str]
    license: str | None


def migrate(conn: psycopg.Connection, sql_dir: Traversable = SQL_DIR) -> MigrationReport:
    """Apply pending migrations; safe to call on every start (a no-op when up to date)."""
    license_ = ensure_extension(conn)
    report = MigrationReport(applied=[], skipped={}, license=license_)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_ID,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS wearables")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS wearables.schema_migrations (
                   version text PRIMARY KEY, filename text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied: dict[str, str] = dict(conn.execute("SELECT version, checksum FROM wearables.schema_migrations").fetchall())
        for migration in discover(sql_dir):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.path.name} was changed after it was applied (version "
                        f"{migration.version}); add a new migration file instead of editing it"
                    )
                continue
            if migration.requires_tsl and license_ != "timescale":
                reason = f"needs timescaledb.license='timescale', server has '{license_}'"
                report.skipped[migration.version] = reason
                if migration.path.name not in _reported_skips:
                    _reported_skips.add(migration.path.name)
                    log.info("skipping migration %s: %s", migration.path.name, reason)
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO wearables.schema_migrations (version, filename, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.path.name, migration.checksum),
                )
            report.applied.append(migration.version)
            log.info("applied migration %s", migration.path.name)
    return report
