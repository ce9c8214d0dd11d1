"""Which table answers a ``/data`` request, and the checks on its time window.

Pure functions, no database: the rules are the API's contract, so they are tested on their own.
Routing exists because reading raw samples gets slow fast — one participant's 30 days of hourly
heart rate takes ~800 ms from 1-s raw data and ~1 ms from the hourly rollup (research note
timescale.md §3.4) — while a chart can only show a few thousand points anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

from wearable_assets.serving.config import ServingConfig

#: Dates and times outside these years are refused (400): no wearable data is older than 1970,
#: and far-off dates only overflow date arithmetic here or in PostgreSQL.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2200
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

RAW_TABLE = "wearables.fitbit_intraday"
HOURLY_TABLE = "wearables.intraday_hourly"
#: The 1-minute continuous aggregate (sql/tsl/001): only on a Timescale-licensed server.
MINUTE_TABLE = "wearables.fitbit_intraday_1min"
DAILY_TABLE = "wearables.participant_day_summary"


class BadRequest(ValueError):
    """A request the client must fix; the message is shown to them as is (HTTP 400)."""


class Resolution(str, Enum):
    AUTO = "auto"
    RAW = "raw"
    MINUTE = "1min"
    HOURLY = "1h"
    DAILY = "1d"


@dataclass(frozen=True)
class Route:
    resolution: Resolution  # never AUTO
    table: str
    from_raw: bool  # buckets computed from the raw table on the fly instead of read from a rollup


def iso_utc(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _span_text(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours" if hours < 48 else f"{hours / 24:g} days"


def choose_route(
    requested: Resolution, start: datetime, end: datetime, config: ServingConfig, *, from_raw: bool = False,
    minute_aggregate: bool = False,
) -> Route:
    """Pick the resolution and table for the window ``[start, end)``.

    ``auto`` picks by span with the configured thresholds (inclusive). An explicit ``raw`` over
    the raw cap is refused rather than silently downsampled, so a client never receives data at
    a resolution it did not ask for without ``auto``. ``from_raw`` asks for hourly/daily buckets
    computed from the raw table (fresher than the rollups, much slower); it has no meaning for raw.
    ``1min`` is never chosen by ``auto``; it is read from the 1-minute continuous aggregate when
    ``minute_aggregate`` says it exists (Timescale licence), else computed from the raw table, and
    is limited to the span ``auto`` serves hourly.
    """
    if start >= end:
        raise BadRequest(f"start ({iso_utc(start)}) must be before end ({iso_utc(end)})")
    span = end - start
    resolution = requested
    if requested is Resolution.AUTO:
        if span <= config.auto_raw_max:
            resolution = Resolution.RAW
        elif span <= config.auto_hourly_max:
            resolution = Resolution.HOURLY
        else:
            resolution = Resolution.DAILY
    if resolution is Resolution.RAW:
        if span > config.raw_max:
            raise BadRequest(
                f"resolution=raw is limited to {_span_text(config.raw_max)} per request and this window spans "
                f"{_span_text(span)}: narrow start/end or use resolution=1h, 1d or auto"
            )
        if from_raw:
            raise BadRequest("from_raw=true only applies to resolution=1h or 1d")
        return Route(Resolution.RAW, RAW_TABLE, from_raw=False)
    if resolution is Resolution.MINUTE:
        if span > config.auto_hourly_max:
            raise BadRequest(
                f"resolution=1min is limited to {_span_text(config.auto_hourly_max)} per request and this window "
                f"spans {_span_text(span)}: narrow start/end or use resolution=1h, 1d or auto"
            )
        if minute_aggregate and not from_raw:
            return Route(Resolution.MINUTE, MINUTE_TABLE, from_raw=False)
        return Route(Resolution.MINUTE, RAW_TABLE, from_raw=True)
    if from_raw:
        return Route(resolution, RAW_TABLE, from_raw=True)
    return Route(resolution, HOURLY_TABLE if resolution is Resolution.HOURLY else DAILY_TABLE, from_raw=False)


def parse_time(name: str, text: str | None, tz: ZoneInfo) -> datetime:
    """Parse a ``start``/``end`` parameter into an aware UTC datetime.

    ISO 8601 with an offset (``2026-11-01T05:00:00Z``) is taken as is. A bare date
    (``2026-11-01``) is midnight and a time without offset is wall-clock time, both in the
    participant's own time zone — what a researcher means by "show me 1 November".
    """
    if text is None or not text.strip():
        raise BadRequest(f"{name} is required (ISO 8601, e.g. 2026-11-01 or 2026-11-01T05:00:00Z)")
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time())
        else:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{name}={text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01 or 2026-11-01T05:00:00Z)"
        ) from None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise BadRequest(f"{name}={text!r} is outside the years {EARLIEST_YEAR}-{LATEST_YEAR}")
    return parsed


def parse_date(name: str, text: str | None) -> date | None:
    """Parse an optional ``YYYY-MM-DD`` parameter (``as_of``); None when absent.

    Stricter than a pydantic ``date`` on purpose: that also takes ``0`` or ``1700000000`` as Unix
    timestamps, which no researcher means by a day.
    """
    if text is None:
        return None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        parsed = date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not a date in the form YYYY-MM-DD (e.g. 2026-11-08)") from None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise BadRequest(f"{name}={text!r} is outside the years {EARLIEST_YEAR}-{LATEST_YEAR}")
    return parsed
