"""``wearable-assets doctor``: is this environment able to run the pipeline? One line per check.

Each check says ``OK`` with what it found, or ``PROBLEM`` with what to do; the exit status is 1
when any check found a problem, so scripts and CI can gate on it. Nothing is changed: the doctor
only connects, reads and sends HEAD requests. Secrets are never printed (DSNs are masked, the
token key is only parsed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from wearable_assets import settings
from wearable_assets.oauth.crypto import TokenCipher, TokenKeyError
from wearable_assets.operator_errors import explain, masked_dsn, token_key_problem
from wearable_assets.settings import TOKEN_KEY_ENV

#: ``DAGSTER_HOME`` as the operator's shell had it: the CLI fills in the project's default for
#: its own commands before they run, but ``dagster`` commands started from that shell get this.
_SHELL_DAGSTER_HOME = settings.text(settings.DAGSTER_HOME_ENV, "")

CONNECT_TIMEOUT_S = 3
HTTP_TIMEOUT_S = 3.0
#: Width of the check-name column (the longest name is "centrepoint auth").
CHECK_WIDTH = 16


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'OK' if self.ok else 'PROBLEM':<8} {self.check:<{CHECK_WIDTH}} {self.message}"


def _connect() -> Any:
    import psycopg

    return psycopg.connect(settings.timescale_dsn(), connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)


def check_database() -> Finding:
    dsn = masked_dsn(settings.timescale_dsn())
    try:
        with _connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:
        return Finding("database", False, explain(exc) or f"{dsn}: {exc}")
    return Finding("database", True, f"reachable at {dsn} (PostgreSQL {version})")


def check_timescaledb() -> Finding:
    from wearable_assets.storage.migrations import timescale_license

    try:
        with _connect() as conn:
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
            license_ = timescale_license(conn) if row else None
    except Exception:
        return Finding("timescaledb", False, "not checked: the database is unreachable (see above)")
    if row is None:
        if available:
            return Finding("timescaledb", False, "the extension is not created in this database yet: "
                           "run `wearable-assets db migrate`")
        return Finding("timescaledb", False, "the server has no timescaledb extension: run `make db` for the "
                       "project-local server, or install TimescaleDB on yours (README, 'Your own TimescaleDB')")
    if license_ == "timescale":
        return Finding("timescaledb", True, f"{row[0]}, licence 'timescale' (sql/tsl/ migrations apply)")
    if license_ == "apache":
        return Finding("timescaledb", True, f"{row[0]}, licence 'apache' (Apache edition: sql/tsl/ migrations "
                       "are skipped, the rollups work without them)")
    return Finding("timescaledb", False, f"{row[0]}, but timescaledb.license is {license_!r}: preload the "
                   "library (shared_preload_libraries = 'timescaledb') and restart the server")


def check_migrations() -> Finding:
    from wearable_assets.storage.migrations import (
        MigrationError,
        discover,
        timescale_license,
    )

    try:
        with _connect() as conn:
            license_ = timescale_license(conn)
            exists = conn.execute("SELECT to_regclass('wearables.schema_migrations')").fetchone()[0]
            applied = dict(conn.execute("SELECT version, checksum FROM wearables.schema_migrations").fetchall()) \
                if exists else {}
    except Exception:
        return Finding("migrations", False, "not checked: the database is unreachable (see above)")
    try:
        migrations = discover()
    except MigrationError as exc:
        return Finding("migrations", False, str(exc))
    edited = [m.path.name for m in migrations if m.version in applied and applied[m.version] != m.checksum]
    if edited:
        return Finding("migrations", False, f"{', '.join(edited)} changed after being applied: restore the "
                       "applied file and put the change in a new migration")
    pending = [m.path.name for m in migrations
               if m.version not in applied and (not m.requires_tsl or license_ == "timescale")]
    if pending:
        return Finding("migrations", False, f"{len(pending)} pending ({', '.join(pending)}): "
                       "run `wearable-assets db migrate`")
    return Finding("migrations", True, f"{len(applied)} applied, none pending")


def check_roster() -> Finding:
    from wearable_assets.roster import RosterError, load_roster

    path = settings.roster_path()
    try:
        participants = load_roster(path)
    except FileNotFoundError:
        return Finding("roster", False, f"{path} does not exist: set {settings.ROSTER_PATH_ENV} to the roster CSV")
    except (RosterError, ValueError, UnicodeDecodeError) as exc:
        return Finding("roster", False, f"{path}: {exc}")
    return Finding("roster", True, f"{path}: {len(participants)} participants")


def check_token_key() -> Finding:
    key = settings.optional(TOKEN_KEY_ENV)
    problem = token_key_problem(key)
    if problem:
        return Finding("token key", False, problem)
    cipher = TokenCipher(key or "")
    unreadable: list[str] = []
    total = 0
    try:
        with _connect() as conn:
            rows = conn.execute(
                "SELECT participant_id, token_ciphertext FROM wearables.oauth_tokens "
                "WHERE token_ciphertext IS NOT NULL ORDER BY participant_id").fetchall() \
                if conn.execute("SELECT to_regclass('wearables.oauth_tokens')").fetchone()[0] else []
    except Exception:
        return Finding("token key", True, f"{TOKEN_KEY_ENV} is well-formed (stored tokens not checked: no database)")
    for participant_id, ciphertext in rows:
        total += 1
        try:
            cipher.decrypt(ciphertext)
        except TokenKeyError:
            unreadable.append(participant_id)
    if unreadable:
        return Finding("token key", False, f"{TOKEN_KEY_ENV} cannot decrypt the stored tokens of "
                       f"{', '.join(sorted(set(unreadable)))}: set the key they were stored with, or re-enrol "
                       "them (`wearable-assets enroll --participant <id>`)")
    return Finding("token key", True, f"{TOKEN_KEY_ENV} is well-formed and decrypts all {total} stored tokens")


def check_dagster_home(shell_value: str | None = None) -> Finding:
    home = _SHELL_DAGSTER_HOME if shell_value is None else shell_value
    fix = f"export DAGSTER_HOME={home if home else settings.dagster_home()} and run `make dagster-home`"
    if not home:
        return Finding("dagster home", False, "DAGSTER_HOME is not set: `dagster` commands would use a temporary "
                       f"instance without the participants partitions; {fix}")
    path = Path(home)
    if not path.is_absolute():
        return Finding("dagster home", False, f"DAGSTER_HOME={home} is not an absolute path (Dagster refuses it)")
    if not path.is_dir():
        return Finding("dagster home", False, f"DAGSTER_HOME={home} does not exist: {fix}")
    if not (path / "dagster.yaml").is_file():
        return Finding("dagster home", False, f"DAGSTER_HOME={home} has no dagster.yaml (run queue, pools): "
                       f"copy the repo's (`make dagster-home`)")
    import dagster as dg

    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME

    previous = os.environ.get(settings.DAGSTER_HOME_ENV)  # restored exactly as it was, blank included
    os.environ[settings.DAGSTER_HOME_ENV] = home
    try:
        with dg.DagsterInstance.get() as instance:
            count = len(instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME))
    except Exception as exc:
        return Finding("dagster home", False, f"DAGSTER_HOME={home}: the instance does not load ({explain(exc) or exc})")
    finally:
        if previous is None:
            os.environ.pop(settings.DAGSTER_HOME_ENV, None)
        else:
            os.environ[settings.DAGSTER_HOME_ENV] = previous
    if count == 0:
        return Finding("dagster home", False, f"DAGSTER_HOME={home} has no participants partitions: "
                       "run `wearable-assets roster sync`")
    return Finding("dagster home", True, f"DAGSTER_HOME={home}: dagster.yaml, {count} participants partitions")


def provider_endpoints() -> list[tuple[str, str, str]]:
    """(name, URL, variable that sets it) for every provider endpoint the runs call."""
    from wearable_assets.actigraph import source as centrepoint
    from wearable_assets.fitbit import google_health, legacy
    endpoints = [
        ("google health", settings.GOOGLE_BASE_URL_ENV, google_health.DEFAULT_BASE_URL),
        ("google oauth", settings.GOOGLE_TOKEN_URL_ENV, google_health.DEFAULT_TOKEN_URL),
        ("fitbit", settings.FITBIT_BASE_URL_ENV, legacy.DEFAULT_BASE_URL),
        # dlt resolves these for the runs; the doctor reads the same plain variables.
        ("centrepoint", settings.CENTREPOINT_BASE_URL_ENV, centrepoint.DEFAULT_BASE_URL),
        ("centrepoint auth", settings.CENTREPOINT_TOKEN_URL_ENV, centrepoint.DEFAULT_TOKEN_URL),
    ]
    return [(name, settings.text(env, default), env) for name, env, default in endpoints]


def check_endpoint(name: str, url: str, env: str) -> Finding:
    """Reachable = any HTTP answer (401, 404 and 405 included): the check is the network path, not auth."""
    import requests

    try:
        response = requests.head(url, timeout=HTTP_TIMEOUT_S, allow_redirects=False)
    except requests.Timeout:
        return Finding(name, False, f"no answer from {url} within {HTTP_TIMEOUT_S:g} s: check the network/proxy, "
                       f"or set {env}")
    except requests.RequestException as exc:
        reason = type(exc).__name__
        return Finding(name, False, f"cannot reach {url} ({reason}): check the network/proxy, or set {env}")
    if response.status_code == 410:
        return Finding(name, True, f"{url} answers 410 Gone (the legacy Fitbit API is switched off; "
                       "participants re-consent with Google Health)")
    return Finding(name, True, f"{url} answers (HTTP {response.status_code})")


def run_checks() -> list[Finding]:
    checks: Iterable[Callable[[], Finding]] = (
        check_database, check_timescaledb, check_migrations, check_roster, check_token_key, check_dagster_home,
    )
    findings = [check() for check in checks]
    # The endpoints at once: an unreachable network costs one timeout, not one per endpoint.
    with ThreadPoolExecutor(max_workers=8) as pool:
        findings += list(pool.map(lambda endpoint: check_endpoint(*endpoint), provider_endpoints()))
    return findings


@click.command("doctor")
def doctor() -> None:
    """Check the database, TimescaleDB, migrations, roster, token key, DAGSTER_HOME and provider
    endpoints; one line per check, exit status 1 if any found a problem."""
    findings = run_checks()
    for finding in findings:
        click.echo(finding.line())
    problems = sum(not f.ok for f in findings)
    if problems:
        click.echo(f"{problems} problem(s) found", err=True)
        raise SystemExit(1)
