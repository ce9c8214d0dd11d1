"""Every environment variable the project reads, with its meaning, its default and its reader.

One place, so that the Makefile, the CLI, the Dagster definitions, the doctor, the README's
configuration table and the tests agree on one answer. ``VARIABLES`` is the list (data, read by
``doctor`` and compared with the README by a test); the ``*_ENV`` constants are the names code
uses; the readers below turn a value into the type the caller needs, or fail with one line saying
which variable is wrong and what to set it to.

Three mechanisms read these variables, each named in the variable's ``read_by``:
- ``settings``: read when needed through the readers here (``text``, ``integer``, ``number``, ...);
- ``dagster``: secrets handed to resources as ``dg.EnvVar(name)``, so Dagster resolves them at
  run start and they never enter Dagster config, logs or the UI;
- ``dlt``: CentrePoint settings resolved by dlt's own configuration lookup (``actigraph/source.py``),
  which also honours ``.dlt/secrets.toml`` and ``SOURCES__CENTREPOINT__*``.
Nothing here holds or logs a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parent.parent

ReadBy = Literal["settings", "dagster", "dlt"]


@dataclass(frozen=True)
class Variable:
    """One environment variable: what it means, its default as the README states it, who reads it."""

    name: str
    meaning: str
    default: str
    read_by: ReadBy = "settings"
    secret: bool = False


_VARIABLES: dict[str, Variable] = {}


def _declare(name: str, meaning: str, default: str, read_by: ReadBy = "settings", secret: bool = False) -> str:
    _VARIABLES[name] = Variable(name, meaning, default, read_by, secret)
    return name


# --- Storage and local state -------------------------------------------------------------------
TIMESCALE_DSN_ENV = _declare(
    "WEARABLES_TIMESCALE_DSN", "your TimescaleDB", "the project-local server (also for `dagster` commands)",
    secret=True
)
STATE_DIR_ENV = _declare("WEARABLES_STATE_DIR", "local state (cluster, lake, Dagster home)", "`.state/`")
PG_PORT_ENV = _declare("WEARABLES_PG_PORT", "port of the project-local TimescaleDB server", "`55432`")
LAKE_URL_ENV = _declare("WEARABLES_LAKE_URL", "lake root (folder or `s3://…`)", "`.state/lake`")
LAKE_DESTINATION_ENV = _declare(
    "WEARABLES_LAKE_DESTINATION", "`filesystem` or `athena` (S3 + Athena, see 'The lake')", "`filesystem`"
)
LAKE_TABLE_FORMAT_ENV = _declare("WEARABLES_LAKE_TABLE_FORMAT", "Athena table format: `hive` or `iceberg`", "`hive`")
ATHENA_RESULTS_ENV = _declare(
    "WEARABLES_ATHENA_RESULTS", "Athena query results location (`s3://…`)", "none (required with Athena)"
)
ATHENA_WORKGROUP_ENV = _declare("WEARABLES_ATHENA_WORKGROUP", "Athena work group", "the account's default")
AWS_REGION_ENV = _declare("AWS_REGION", "AWS region of the Athena lake", "`AWS_DEFAULT_REGION`")
AWS_DEFAULT_REGION_ENV = _declare("AWS_DEFAULT_REGION", "AWS region when `AWS_REGION` is unset", "the AWS profile's")
AWS_ENDPOINT_URL_ENV = _declare("AWS_ENDPOINT_URL", "S3/Athena endpoint (a local stand-in in tests)", "AWS")
DAGSTER_HOME_ENV = _declare(
    "DAGSTER_HOME", "Dagster instance folder (runs, schedules, partitions)", "`.state/dagster_home` for the CLI"
)
# --- Roster and partitions ---------------------------------------------------------------------
ROSTER_PATH_ENV = _declare("WEARABLES_ROSTER", "roster CSV", "`roster/demo_roster.csv`")
PARTITION_START_ENV = _declare("WEARABLES_PARTITION_START", "first partition date", "`2025-01-01`")
# --- Fitbit: Google Health and the legacy Web API ------------------------------------------------
TOKEN_KEY_ENV = _declare(
    "WEARABLES_TOKEN_KEY", "Fernet key for tokens at rest (`wearable-assets token-key` prints a new one)",
    "none (required to ingest Fitbit)", "dagster", secret=True
)
GOOGLE_CLIENT_ID_ENV = _declare(
    "GOOGLE_CLIENT_ID", "Google Health OAuth client id", "none (required to ingest Google Health)", "dagster",
    secret=True
)
GOOGLE_CLIENT_SECRET_ENV = _declare(
    "GOOGLE_CLIENT_SECRET", "Google Health OAuth client secret", "none (required to ingest Google Health)", "dagster",
    secret=True
)
FITBIT_CLIENT_ID_ENV = _declare(
    "FITBIT_CLIENT_ID", "legacy Fitbit Web API client id", "none (only legacy participants need it)", "dagster",
    secret=True
)
FITBIT_CLIENT_SECRET_ENV = _declare(
    "FITBIT_CLIENT_SECRET", "legacy Fitbit Web API client secret", "none (only legacy participants need it)",
    "dagster", secret=True
)
GOOGLE_AUTH_URL_ENV = _declare("WEARABLES_GOOGLE_OAUTH_AUTH_URL", "Google OAuth consent URL", "Google's")
GOOGLE_TOKEN_URL_ENV = _declare("WEARABLES_GOOGLE_OAUTH_TOKEN_URL", "Google OAuth token URL", "Google's")
GOOGLE_BASE_URL_ENV = _declare("WEARABLES_GOOGLE_HEALTH_BASE_URL", "Google Health API base URL", "Google's")
FITBIT_BASE_URL_ENV = _declare(
    "WEARABLES_FITBIT_BASE_URL", "legacy Fitbit Web API base URL (also its OAuth URLs)", "Fitbit's"
)
GOOGLE_PROJECT_REQUESTS_ENV = _declare(
    "WEARABLES_GOOGLE_PROJECT_REQUESTS",
    "Google Health requests per window for the whole project (its quota; each step of the `google_health_api` "
    "pool gets an equal share)", "`120000`"
)
GOOGLE_PROJECT_WINDOW_ENV = _declare(
    "WEARABLES_GOOGLE_PROJECT_WINDOW_S", "window of `WEARABLES_GOOGLE_PROJECT_REQUESTS` (seconds)", "`60`"
)
# --- ActiGraph CentrePoint (resolved by dlt; listed here so the doctor and the docs read one list) --
CENTREPOINT_BASE_URL_ENV = _declare("CENTREPOINT_BASE_URL", "CentrePoint API base URL", "ActiGraph's", "dlt")
CENTREPOINT_TOKEN_URL_ENV = _declare("CENTREPOINT_TOKEN_URL", "CentrePoint OAuth token URL", "ActiGraph's", "dlt")
CENTREPOINT_CLIENT_ID_ENV = _declare(
    "CENTREPOINT_CLIENT_ID", "CentrePoint client id (or `[sources.centrepoint]` in `.dlt/secrets.toml`)",
    "none (required to ingest ActiGraph)", "dlt", secret=True
)
CENTREPOINT_CLIENT_SECRET_ENV = _declare(
    "CENTREPOINT_CLIENT_SECRET", "CentrePoint client secret", "none (required to ingest ActiGraph)", "dlt",
    secret=True
)
CENTREPOINT_REQUESTS_ENV = _declare(
    "WEARABLES_CENTREPOINT_REQUESTS",
    "CentrePoint requests (token requests included) per window from one process; the `centrepoint_api` pool "
    "of 1 makes it the machine's", "`500`"
)
CENTREPOINT_WINDOW_ENV = _declare(
    "WEARABLES_CENTREPOINT_WINDOW_S", "window of `WEARABLES_CENTREPOINT_REQUESTS` (seconds)", "`60`"
)
LEGACY_CENTREPOINT_CLIENT_ID_ENV = _declare(
    "CENTERPOINT_USERNAME", "older name of `CENTREPOINT_CLIENT_ID`, read last", "none", secret=True
)
LEGACY_CENTREPOINT_CLIENT_SECRET_ENV = _declare(
    "CENTERPOINT_PASSWORD", "older name of `CENTREPOINT_CLIENT_SECRET`, read last", "none", secret=True
)
# --- Schedule, rollups and checks --------------------------------------------------------------
SCHEDULE_CRON_ENV = _declare(
    "WEARABLES_SCHEDULE_CRON", "when the daily schedule runs (cron, read when the definitions load)", "`0 9 * * *`"
)
SCHEDULE_TIMEZONE_ENV = _declare("WEARABLES_SCHEDULE_TIMEZONE", "time zone of the schedule's cron", "`UTC`")
REPULL_DAYS_ENV = _declare("WEARABLES_REPULL_DAYS", "trailing days the schedule pulls again", "`3`")
SCHEDULE_BATCH_ENV = _declare(
    "WEARABLES_SCHEDULE_MAX_PARTITIONS_PER_RUN", "participant-days per scheduled run", "`50`"
)
MIN_WEAR_ENV = _declare(
    "WEARABLES_VALID_DAY_MIN_WEAR_MINUTES", "wear minutes that make a valid day (1..1500)", "`600`"
)
FRESHNESS_ENV = _declare(
    "WEARABLES_FRESHNESS_MAX_DAYS", "days without a device sync before the freshness check warns", "`3`"
)
# --- Read API (docs/serving.md) ----------------------------------------------------------------
API_DSN_ENV = _declare(
    "WEARABLES_API_DSN",
    "the read API's own login: role `wearables_api` (SELECT only, never the token table; the API refuses "
    "a login that could do more), with its password from your secret store",
    "`WEARABLES_TIMESCALE_DSN` with user `wearables_api` and no password (the local server trusts loopback)",
    secret=True
)
RETIRED_API_ROLE_ENV = _declare("WEARABLES_API_ROLE", "no longer used (a warning says so when set)", "none")
CORS_ORIGINS_ENV = _declare("WEARABLES_API_CORS_ORIGINS", "comma-separated browser origins allowed by CORS", "none")
AUTO_RAW_MAX_HOURS_ENV = _declare(
    "WEARABLES_API_AUTO_RAW_MAX_HOURS", "`auto` resolution: spans up to this many hours are raw", "`24`"
)
AUTO_HOURLY_MAX_DAYS_ENV = _declare(
    "WEARABLES_API_AUTO_HOURLY_MAX_DAYS", "`auto` resolution: spans up to this many days are hourly", "`60`"
)
RAW_MAX_DAYS_ENV = _declare("WEARABLES_API_RAW_MAX_DAYS", "longest span served at `resolution=raw` (days)", "`7`")
STATEMENT_TIMEOUT_MS_ENV = _declare(
    "WEARABLES_API_STATEMENT_TIMEOUT_MS", "per-statement limit of the API's queries (ms)", "`15000`"
)
API_HOST_ENV = _declare("WEARABLES_API_HOST", "interface `wearable-assets serve` binds", "`127.0.0.1`")
API_PORT_ENV = _declare("WEARABLES_API_PORT", "port `wearable-assets serve` binds", "`8000`")
# --- Compliance alerts (docs/compliance.md) ------------------------------------------------------
ALERT_NON_VALID_DAYS_ENV = _declare(
    "WEARABLES_ALERT_NON_VALID_DAYS", "alert after this many non-valid days in a row (1-92)", "`3`")
ALERT_NO_SYNC_HOURS_ENV = _declare("WEARABLES_ALERT_NO_SYNC_HOURS", "alert when no device synced for this long (h)",
                                   "`48`")
ALERT_STUDY_INVALID_PCT_ENV = _declare(
    "WEARABLES_ALERT_STUDY_INVALID_PCT", "alert when more of a study's days yesterday were not valid (%)", "`50`")
ALERT_WEBHOOK_URL_ENV = _declare(
    "WEARABLES_ALERT_WEBHOOK_URL", "Slack-compatible webhook the alerts are posted to", "none (no notification)",
    secret=True)
ALERT_WEBHOOK_RETRIES_ENV = _declare("WEARABLES_ALERT_WEBHOOK_RETRIES", "webhook delivery retries (0-10)", "`3`")
ALERT_CRON_ENV = _declare("WEARABLES_ALERT_CRON", "cron of the daily alert evaluation (UTC)", "`0 11 * * *`")

#: Every variable above, in declaration order (the README's configuration table lists exactly these).
VARIABLES: tuple[Variable, ...] = tuple(_VARIABLES.values())

DEFAULT_PG_PORT = 55432
DEFAULT_PARTITION_START = "2025-01-01"


class SettingError(ValueError):
    """An environment variable holds a value the project cannot use; the message names it and the fix."""


def _known(name: str) -> str:
    if name not in _VARIABLES:
        raise KeyError(f"{name} is not declared in wearable_assets/settings.py")
    return name


def raw(name: str) -> str | None:
    """The variable's value with surrounding blanks removed; ``None`` when unset or blank."""
    value = os.environ.get(_known(name), "").strip()
    return value or None


def is_set(name: str) -> bool:
    return raw(name) is not None


def text(name: str, default: str) -> str:
    """The value, or ``default`` when unset or blank."""
    return raw(name) or default


def optional(name: str) -> str | None:
    return raw(name)


def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = raw(name) or default
    if value not in allowed:
        raise SettingError(f"{name}={value!r} is not one of {', '.join(allowed)}: set one of them or unset it "
                           f"(default {default})")
    return value


def required(name: str, fix: str) -> str:
    """The value; a ``SettingError`` saying what to do (``fix``) when it is unset."""
    value = raw(name)
    if value is None:
        raise SettingError(f"{name} is not set: {fix}")
    return value


def integer(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
            unit: str = "") -> int:
    """A whole number within ``minimum``..``maximum``; ``default`` when unset or blank."""
    value = raw(name)
    if value is None:
        return default
    what = f"whole number of {unit}" if unit else "whole number"
    try:
        number_ = int(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a {what} (unset it for the default, {default})") from None
    suffix = f" {unit}" if unit else ""
    if minimum is not None and maximum is not None and not minimum <= number_ <= maximum:
        raise SettingError(f"{name}={number_} must be between {minimum} and {maximum}{suffix}")
    if minimum is not None and number_ < minimum:
        raise SettingError(f"{name}={number_} must be at least {minimum}{suffix}")
    if maximum is not None and number_ > maximum:
        raise SettingError(f"{name}={number_} must be at most {maximum}{suffix}")
    return number_


def number(name: str, default: float, *, minimum: float, maximum: float | None = None) -> float:
    """A number within ``minimum``..``maximum``; ``default`` when unset or blank."""
    value = raw(name)
    if value is None:
        return default
    try:
        number_ = float(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a number (unset it for the default, {default:g})") from None
    if number_ < minimum or (maximum is not None and number_ > maximum):
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        raise SettingError(f"{name}={value!r} must be at least {minimum:g}{upper}")
    return number_


def positive_number(name: str, default: float, unit: str = "") -> float:
    """A number above zero; ``default`` when unset or blank."""
    value = raw(name)
    if value is None:
        return default
    try:
        number_ = float(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a number (unset it for the default, {default:g})") from None
    if not number_ > 0:
        raise SettingError(f"{name}={value!r} must be a positive number{' of ' + unit if unit else ''}")
    return number_


# --- Paths and connections shared by every entry point -----------------------------------------


def state_dir() -> Path:
    """The git-ignored folder holding everything the project creates at run time."""
    return Path(raw(STATE_DIR_ENV) or REPO_ROOT / ".state").resolve()


def local_dsn() -> str:
    """DSN of the project-local server started by ``scripts/timescaledb.sh`` (trust auth, loopback)."""
    port = integer(PG_PORT_ENV, DEFAULT_PG_PORT, minimum=1, maximum=65535)
    return f"postgresql://wearables@127.0.0.1:{port}/wearables"


def timescale_dsn() -> str:
    """The user's own TimescaleDB if given, else the project-local one."""
    return raw(TIMESCALE_DSN_ENV) or local_dsn()


def lake_url() -> str:
    """Root of the parquet lake (a local folder by default, ``s3://bucket/prefix`` for Athena)."""
    return raw(LAKE_URL_ENV) or str(state_dir() / "lake")


def dagster_home() -> Path:
    """Default ``DAGSTER_HOME``: inside the state folder, so runs survive ``dagster dev`` restarts."""
    return Path(raw(DAGSTER_HOME_ENV) or state_dir() / "dagster_home")


def roster_path() -> Path:
    """The roster file; the demo roster shipped in the repo unless overridden."""
    return Path(raw(ROSTER_PATH_ENV) or REPO_ROOT / "roster" / "demo_roster.csv")


def partition_start() -> str:
    return raw(PARTITION_START_ENV) or DEFAULT_PARTITION_START


def mask_dsn(dsn: str) -> str:
    """Hide a password in a DSN before it is printed or logged."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
