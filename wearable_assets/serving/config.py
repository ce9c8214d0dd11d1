"""Settings of the read API, read once from the environment when the app is built.

Kept apart from ``wearable_assets.settings`` because only the API uses them, and so that a test
or the benchmark can build an app with its own values (``ServingConfig(...)``) without touching
the environment. Nothing here is a secret except possibly a password inside ``dsn``, which is
never logged (``settings.mask_dsn``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from wearable_assets import settings

#: DSN the API connects with; defaults to the pipeline's own DSN (the API then drops to ``role``).
API_DSN_ENV = "WEARABLES_API_DSN"
#: Role the API switches to on every connection (``SET ROLE``); empty to keep the login role
#: (when the API DSN already logs in as a read-only user).
API_ROLE_ENV = "WEARABLES_API_ROLE"
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

READER_ROLE = "wearables_reader"  # created by wearable_assets/sql/005_serving.sql


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
    dsn: str
    role: str | None = READER_ROLE
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
        role = os.environ.get(API_ROLE_ENV, READER_ROLE).strip() or None
        return cls(
            dsn=os.environ.get(API_DSN_ENV) or settings.timescale_dsn(),
            role=role,
            cors_origins=origins,
            auto_raw_max=timedelta(hours=_float_env(AUTO_RAW_MAX_HOURS_ENV, 24)),
            auto_hourly_max=timedelta(days=_float_env(AUTO_HOURLY_MAX_DAYS_ENV, 60)),
            raw_max=timedelta(days=_float_env(RAW_MAX_DAYS_ENV, 7)),
            statement_timeout_ms=int(_float_env(STATEMENT_TIMEOUT_MS_ENV, 15_000)),
        )
