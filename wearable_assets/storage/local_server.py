"""The project-local TimescaleDB as seen from Python: start it, stop it, make scratch databases.

Tests and benchmarks need a real server they can create throw-away databases on. Starting it is
``scripts/timescaledb.sh``'s job (it installs and builds what is missing); this module only calls
it, so there is one way to get a server whether the caller is ``make``, pytest or a benchmark.
A user's own server (``WEARABLES_TIMESCALE_DSN``) is used as given and never started or stopped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from wearable_assets import settings

SCRIPT = settings.REPO_ROOT / "scripts" / "timescaledb.sh"


def _script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True)


def ensure_server() -> tuple[str, bool]:
    """DSN of a running server, and whether this call started it (so the caller can stop it)."""
    dsn = settings.optional(settings.TIMESCALE_DSN_ENV)
    if dsn:
        return dsn, False
    running = _script("status").returncode == 0
    out = _script("start")
    if out.returncode != 0:
        raise RuntimeError(f"could not start the local TimescaleDB:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1], not running


def stop_server() -> None:
    """Stop the project-local server (a no-op when it is not running)."""
    _script("stop")


def scratch_database(server_dsn: str, name: str, *, create: bool = True) -> str:
    """Drop database ``name`` on the server of ``server_dsn`` and, unless ``create`` is false,
    create it empty again; returns its DSN. Scratch data never shares a database with real data."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server_dsn, dbname=name)


@contextmanager
def temporary_database(server_dsn: str, name: str) -> Iterator[str]:
    """A scratch database for the duration of the block (its DSN), dropped afterwards."""
    dsn = scratch_database(server_dsn, name)
    try:
        yield dsn
    finally:
        scratch_database(server_dsn, name, create=False)
