"""Settings of the read API, read once from the environment when the app is built.

Kept apart from ``wearable_assets.settings`` because only the API uses them, and so that a test
or the benchmark can build an app with its own values (``ServingConfig(...)``) without touching
the environment. Nothing here is a secret except possibly a password inside ``dsn``, which is
never logged (``describe_dsn``).

The API logs in as its own role, ``wearables_api`` (sql/009_api_login_role.sql), never as the
pipeline's user: a role that holds only SELECT has nothing that ``RESET ROLE`` or ``SET ROLE``
could give back, which a narrowed-down pipeline login would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from wearable_assets import settings
from wearable_assets.settings import (
    API_DSN_ENV,
    AUTO_HOURLY_MAX_DAYS_ENV,
    AUTO_RAW_MAX_HOURS_ENV,
    CORS_ORIGINS_ENV,
    RAW_MAX_DAYS_ENV,
    RETIRED_API_ROLE_ENV,
    STATEMENT_TIMEOUT_MS_ENV,
)

log = logging.getLogger(__name__)

# The API's variables (``WEARABLES_API_*``: its DSN, CORS origins, routing thresholds, statement
# timeout) are declared, with their meanings and defaults, in ``wearable_assets/settings.py``.

#: The API's login role (created by sql/009_api_login_role.sql): SELECT only, no token table.
API_LOGIN_ROLE = "wearables_api"


def api_dsn(pipeline_dsn: str) -> str:
    """The pipeline's DSN turned into the API's: same server and database, user ``wearables_api``
    and no password — the pipeline's password must not travel to a process that does not need it.

    Right for the project-local server (trust on loopback); a server that wants a password gets
    the API's own DSN in ``WEARABLES_API_DSN``.
    """
    params = psycopg.conninfo.conninfo_to_dict(pipeline_dsn)
    params.pop("password", None)
    params.pop("passfile", None)
    params["user"] = API_LOGIN_ROLE
    return psycopg.conninfo.make_conninfo("", **params)


@dataclass(frozen=True)
class ServingConfig:
    #: Must log in as a read-only role (``wearables_api``); ``db.ReadOnlyPool`` refuses any other.
    dsn: str
    cors_origins: tuple[str, ...] = ()
    #: ``auto``: raw up to this span (inclusive) ...
    auto_raw_max: timedelta = timedelta(days=1)
    #: ... hourly rollup up to this span (inclusive), daily summary beyond.
    auto_hourly_max: timedelta = timedelta(days=60)
    #: ``resolution=raw`` over a longer span is refused (400): it would page through millions of rows.
    raw_max: timedelta = timedelta(days=7)
    default_limit: int = 5000
    max_limit: int = 50_000
    statement_timeout_ms: int = 15_000
    pool_size: int = 8

    def __post_init__(self) -> None:
        if not self.auto_raw_max <= self.auto_hourly_max:
            raise ValueError("the raw threshold of auto routing must not exceed the hourly one")
        if self.auto_raw_max > self.raw_max:
            raise ValueError("auto routing would pick raw for spans that resolution=raw refuses")

    @classmethod
    def from_env(cls) -> ServingConfig:
        origins = tuple(o.strip().rstrip("/") for o in settings.text(CORS_ORIGINS_ENV, "").split(",") if o.strip())
        if settings.is_set(RETIRED_API_ROLE_ENV):
            log.warning("%s is no longer used: the API logs in as %s (set %s)", RETIRED_API_ROLE_ENV,
                        API_LOGIN_ROLE, API_DSN_ENV)
        return cls(
            dsn=settings.optional(API_DSN_ENV) or api_dsn(settings.timescale_dsn()),
            cors_origins=origins,
            auto_raw_max=timedelta(hours=settings.positive_number(AUTO_RAW_MAX_HOURS_ENV, 24, "hours")),
            auto_hourly_max=timedelta(days=settings.positive_number(AUTO_HOURLY_MAX_DAYS_ENV, 60, "days")),
            raw_max=timedelta(days=settings.positive_number(RAW_MAX_DAYS_ENV, 7, "days")),
            statement_timeout_ms=int(settings.positive_number(STATEMENT_TIMEOUT_MS_ENV, 15_000, "milliseconds")),
        )


def describe_dsn(dsn: str) -> str:
    """``user@host:port/dbname`` for logs and start-up lines: never the password, whichever DSN
    syntax (URI or ``key=value``) carries it."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    return (f"{params.get('user', '<default user>')}@{params.get('host', '<default host>')}:"
            f"{params.get('port', '5432')}/{params.get('dbname', '<default database>')}")
