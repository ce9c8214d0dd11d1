"""Where the project keeps its local state, and the environment variables that override it.

Every path and connection default lives here so that the Makefile, the CLI, the Dagster
definitions and the tests agree on one answer. Nothing here holds a secret: secrets are read
from the environment by the resources that need them (Dagster ``EnvVar``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable holding the TimescaleDB DSN. If unset, the project-local server is used.
TIMESCALE_DSN_ENV = "WEARABLES_TIMESCALE_DSN"
#: Environment variable naming the state folder (database cluster, lake, Dagster home).
STATE_DIR_ENV = "WEARABLES_STATE_DIR"
#: Port of the project-local PostgreSQL/TimescaleDB server.
PG_PORT_ENV = "WEARABLES_PG_PORT"
#: First day of the daily partition dimension (ISO date).
PARTITION_START_ENV = "WEARABLES_PARTITION_START"
#: Roster file synced into ``wearables.participants`` and the dynamic partitions.
ROSTER_PATH_ENV = "WEARABLES_ROSTER"
#: Lake location: a local folder (default) or an ``s3://`` URL when Athena is configured.
LAKE_URL_ENV = "WEARABLES_LAKE_URL"

DEFAULT_PG_PORT = 55432
DEFAULT_PARTITION_START = "2025-01-01"


def state_dir() -> Path:
    """The git-ignored folder holding everything the project creates at run time."""
    return Path(os.environ.get(STATE_DIR_ENV) or REPO_ROOT / ".state").resolve()


def local_dsn() -> str:
    """DSN of the project-local server started by ``scripts/timescaledb.sh`` (trust auth, loopback)."""
    port = int(os.environ.get(PG_PORT_ENV) or DEFAULT_PG_PORT)
    return f"postgresql://wearables@127.0.0.1:{port}/wearables"


def timescale_dsn() -> str:
    """The user's own TimescaleDB if given, else the project-local one."""
    return os.environ.get(TIMESCALE_DSN_ENV) or local_dsn()


def lake_url() -> str:
    """Root of the parquet lake (a local folder by default, ``s3://bucket/prefix`` for Athena)."""
    return os.environ.get(LAKE_URL_ENV) or str(state_dir() / "lake")


def dagster_home() -> Path:
    """Default ``DAGSTER_HOME``: inside the state folder, so runs survive ``dagster dev`` restarts."""
    return Path(os.environ.get("DAGSTER_HOME", "").strip() or state_dir() / "dagster_home")


def roster_path() -> Path:
    """The roster file; the demo roster shipped in the repo unless overridden."""
    return Path(os.environ.get(ROSTER_PATH_ENV) or REPO_ROOT / "roster" / "demo_roster.csv")


def partition_start() -> str:
    return os.environ.get(PARTITION_START_ENV) or DEFAULT_PARTITION_START


def mask_dsn(dsn: str) -> str:
    """Hide a password in a DSN before it is printed or logged."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
