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
import os
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from wearable_assets import settings

log = logging.getLogger(__name__)

#: DSN the API connects with, logging in as ``API_LOGIN_ROLE``; a deployment puts the password
#: (from its secret store) here. Default: ``api_dsn()`` of the pipeline's DSN.
API_DSN_ENV = "WEARABLES_API_DSN"
#: No longer read: the API used to ``SET ROLE`` to it. Its presence is reported once at start-up.
RETIRED_API_ROLE_ENV = "WEARABLES_API_ROLE"
#: Comma-separated browser origins allowed by CORS, e.g. ``http://localhost:3000``. Empty: none.
CORS_ORIGINS_ENV = "WEARABLES_API_CORS_ORIGINS"
#: ``auto`` routing: spans up to this many hours are served raw.
AUTO_RAW_MAX_HOURS_ENV = "WEARABLES_API_AUTO_RAW_MAX_HOURS"
#: ``auto`` routing: spans up to this many days come from the hourly rollup, longer ones are daily.
AUTO_HOURLY_MAX_DAYS_ENV = "WEARABLES_API_AUTO_HOURLY_MAX_DAYS"
#: Longest span a client may ask for at ``resolution=raw`` (days).
RAW_MAX_DAYS_ENV = "WEARABLES_API_RAW_MAX_DAYS"
#: Server-side limit per statement; a slower query answers 503 instead of tying up the database.
STATEMENT_TIMEOUT_MS_ENV = "WEARABLES_API_STATEMENT_TIMEOUT_MS"

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


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


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
        origins = tuple(o.strip().rstrip("/") for o in os.environ.get(CORS_ORIGINS_ENV, "").split(",") if o.strip())
        if os.environ.get(RETIRED_API_ROLE_ENV):
            log.warning("%s is no longer used: the API logs in as %s (set %s)", RETIRED_API_ROLE_ENV,
                        API_LOGIN_ROLE, API_DSN_ENV)
        return cls(
            dsn=os.environ.get(API_DSN_ENV) or api_dsn(settings.timescale_dsn()),
            cors_origins=origins,
            auto_raw_max=timedelta(hours=_float_env(AUTO_RAW_MAX_HOURS_ENV, 24)),
            auto_hourly_max=timedelta(days=_float_env(AUTO_HOURLY_MAX_DAYS_ENV, 60)),
            raw_max=timedelta(days=_float_env(RAW_MAX_DAYS_ENV, 7)),
            statement_timeout_ms=int(_float_env(STATEMENT_TIMEOUT_MS_ENV, 15_000)),
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
