"""The API's SQL: fixed statements with bound parameters, one function per question.

Table and column names are constants of this module (the only ``sql.Identifier`` input is the
aggregate column picked from a fixed set); every value a client sends is a bound parameter.
Points are always ordered by time, so ``LIMIT/OFFSET`` pages are stable and, taken together,
cover the window exactly once; ``count(*) OVER ()`` gives the total in the same scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from wearable_assets.fitbit.metrics import METRICS
from wearable_assets.participants import store as participant_store
from wearable_assets.roster import Participant
from wearable_assets.serving.routing import RAW_TABLE, Resolution, Route

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Page:
    points: list[dict[str, Any]]
    total_count: int


def find_participant(conn: psycopg.Connection, participant_id: str) -> Participant | None:
    return participant_store.find(conn, participant_id)


def _floor_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(ts: datetime) -> datetime:
    floor = _floor_hour(ts)
    return floor if floor == ts else floor + HOUR


def _floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _ceil_minute(ts: datetime) -> datetime:
    floor = _floor_minute(ts)
    return floor if floor == ts else floor + MINUTE


def minute_aggregate_exists(conn: psycopg.Connection) -> bool:
    """Whether the 1-minute continuous aggregate exists (Timescale licence, sql/tsl/001)."""
    row = conn.execute("SELECT to_regclass('wearables.fitbit_intraday_1min') IS NOT NULL").fetchone()
    return bool(row and row[0])


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """First and last local dates that overlap ``[start, end)``."""
    return start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(timezone.utc)


def _page(conn: psycopg.Connection, query: sql.Composable, params: dict[str, Any], limit: int, offset: int) -> Page:
    """Run ``query`` (which yields a ``ts`` column) as one page plus the window's total row count."""
    paged = sql.SQL("SELECT q.*, count(*) OVER () AS _total FROM ({}) q ORDER BY q.ts LIMIT %(limit)s OFFSET %(offset)s")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(paged.format(query), {**params, "limit": limit, "offset": offset}).fetchall()
        if rows:
            total = rows[0]["_total"]
        else:  # an offset past the end returns no rows, hence no window count: ask directly
            counted = cur.execute(sql.SQL("SELECT count(*) AS n FROM ({}) q").format(query), params).fetchone()
            total = counted["n"] if counted else 0
    for row in rows:
        del row["_total"]
    return Page(points=rows, total_count=int(total))


# --- the points of one participant and metric, per resolution ------------------------------------

_RAW = sql.SQL(
    """SELECT ts, value FROM wearables.fitbit_intraday
        WHERE participant_id = %(pid)s AND metric = %(metric)s AND ts >= %(lo)s AND ts < %(hi)s"""
)

# Hourly and daily buckets from the raw table, for from_raw=true (fresh data the rollups have not
# reached yet, and the benchmark's baseline). Sums for counters, means for levels, as the rollups.
_RAW_HOURLY = sql.SQL(
    """SELECT time_bucket('1 hour', ts) AS ts, {agg}(value) AS value, min(value) AS min, max(value) AS max,
              count(*) AS count
         FROM wearables.fitbit_intraday
        WHERE participant_id = %(pid)s AND metric = %(metric)s AND ts >= %(lo)s AND ts < %(hi)s
        GROUP BY 1"""
)
_RAW_DAILY = sql.SQL(
    """SELECT (d.local_date::timestamp AT TIME ZONE %(tz)s) AS ts, d.local_date, d.value, d.min, d.max, d.count
         FROM (SELECT (ts AT TIME ZONE %(tz)s)::date AS local_date, {agg}(value) AS value, min(value) AS min,
                      max(value) AS max, count(*) AS count
                 FROM wearables.fitbit_intraday
                WHERE participant_id = %(pid)s AND metric = %(metric)s AND ts >= %(lo)s AND ts < %(hi)s
                GROUP BY 1) d"""
)

# 1-minute buckets: from the continuous aggregate (only the refreshed buckets: it is materialised-
# only) or, without one, from the raw table like the other from_raw resolutions.
_MINUTE = sql.SQL(
    """SELECT bucket AS ts, {value} AS value, min_value AS min, max_value AS max, n_samples AS count
         FROM wearables.fitbit_intraday_1min
        WHERE participant_id = %(pid)s AND metric = %(metric)s AND bucket >= %(lo)s AND bucket < %(hi)s"""
)
_RAW_MINUTE = sql.SQL(
    """SELECT time_bucket('1 minute', ts) AS ts, {agg}(value) AS value, min(value) AS min, max(value) AS max,
              count(*) AS count
         FROM wearables.fitbit_intraday
        WHERE participant_id = %(pid)s AND metric = %(metric)s AND ts >= %(lo)s AND ts < %(hi)s
        GROUP BY 1"""
)

# The hourly rollup is keyed by participant-day too, so an hour that straddles two local days
# (zones with a half-hour offset) has two rows: they are merged into one UTC-hour point here.
_HOURLY = sql.SQL(
    """SELECT bucket AS ts, {value} AS value, min(min_value) AS min, max(max_value) AS max,
              sum(n_samples)::bigint AS count
         FROM wearables.intraday_hourly
        WHERE participant_id = %(pid)s AND metric = %(metric)s AND bucket >= %(lo)s AND bucket < %(hi)s
          AND local_date BETWEEN %(first)s AND %(last)s  -- redundant, but lets the primary key narrow the scan
        GROUP BY bucket"""
)
_HOURLY_SUM = sql.SQL("sum(sum_value)")
_HOURLY_MEAN = sql.SQL("sum(sum_value) / nullif(sum(n_samples), 0)")

# Daily points are the participant-day summary's columns; every summarised day is a point (value
# null when there was no data), with its valid-day verdict, the reason for missing data, each
# device's state and the count of values the plausibility rules quarantined.
_DAILY = sql.SQL(
    """SELECT (local_date::timestamp AT TIME ZONE %(tz)s) AS ts, local_date, {value} AS value, {min} AS min,
              {max} AS max, valid_day, completeness_reason, fitbit_status, actigraph_status, quarantined_values
         FROM wearables.participant_day_summary
        WHERE participant_id = %(pid)s AND local_date >= %(first)s AND local_date <= %(last)s"""
)
#: metric -> (value, min, max) columns of wearables.participant_day_summary
DAILY_COLUMNS: dict[str, tuple[str, str | None, str | None]] = {
    "heart_rate": ("hr_mean", "hr_min", "hr_max"),
    "resting_heart_rate": ("resting_hr", None, None),
    "steps": ("steps", None, None),
    "calories": ("calories", None, None),
    "distance": ("distance_m", None, None),
    "floors": ("floors", None, None),
    "active_zone_minutes": ("active_zone_minutes", None, None),
    "spo2": ("spo2_mean", None, None),
    "hrv_rmssd": ("hrv_rmssd_mean", None, None),
    "breathing_rate": ("breathing_rate_mean", None, None),
}


def _column(name: str | None) -> sql.Composable:
    return sql.Identifier(name) if name else sql.SQL("NULL::double precision")


def fetch_points(
    conn: psycopg.Connection,
    route: Route,
    participant: Participant,
    metric: str,
    start: datetime,
    end: datetime,
    limit: int,
    offset: int,
) -> Page:
    """One page of ``metric`` for the window ``[start, end)`` at the route's resolution.

    Raw samples are those with ``start <= ts < end``. Hourly and daily buckets are those that
    overlap the window, each with all of its samples (a chart wants whole buckets).
    """
    summed = METRICS[metric].aggregation == "sum"
    params: dict[str, Any] = {"pid": participant.participant_id, "metric": metric, "tz": participant.time_zone}
    if route.resolution is Resolution.RAW:
        query: sql.Composable = _RAW
        params.update(lo=start, hi=end)
    elif route.resolution is Resolution.MINUTE:
        params.update(lo=_floor_minute(start), hi=_ceil_minute(end))
        if route.from_raw:
            query = _RAW_MINUTE.format(agg=sql.SQL("sum" if summed else "avg"))
        else:
            query = _MINUTE.format(value=sql.SQL("sum_value" if summed else "mean_value"))
    elif route.resolution is Resolution.HOURLY:
        params.update(lo=_floor_hour(start), hi=_ceil_hour(end))
        params.update(zip(("first", "last"), local_days(params["lo"], params["hi"], participant.tz)))
        if route.from_raw:
            query = _RAW_HOURLY.format(agg=sql.SQL("sum" if summed else "avg"))
        else:
            query = _HOURLY.format(value=_HOURLY_SUM if summed else _HOURLY_MEAN)
    else:
        first, last = local_days(start, end, participant.tz)
        if route.from_raw:
            params.update(lo=local_midnight_utc(first, participant.tz),
                          hi=local_midnight_utc(last + timedelta(days=1), participant.tz))
            query = _RAW_DAILY.format(agg=sql.SQL("sum" if summed else "avg"))
        else:
            params.update(first=first, last=last)
            value, low, high = DAILY_COLUMNS[metric]
            query = _DAILY.format(value=_column(value), min=_column(low), max=_column(high))
    assert route.table == RAW_TABLE or not route.from_raw
    return _page(conn, query, params, limit, offset)


# --- overview ----------------------------------------------------------------------------------

_PARTICIPANTS = """
SELECT p.participant_id, p.study_id, p.time_zone, p.fitbit_provider, p.enrolled_from, p.enrolled_to, p.in_roster,
       CASE WHEN p.fitbit_provider IS NULL THEN NULL ELSE coalesce(t.auth_state, 'not_connected') END AS auth_state,
       t.reconsent_reason, t.auth_state_since,
       s.last_device_sync, s.last_ingest_at, s.first_data_date, s.last_data_date, s.sources,
       v.as_of, coalesce(v.valid_days, 0) AS valid_days_last_7, coalesce(v.summarised_days, 0) AS summarised_days_last_7
  FROM wearables.participants p
  LEFT JOIN wearables.auth_states t ON t.participant_id = p.participant_id AND t.provider = p.fitbit_provider
  LEFT JOIN LATERAL (
        SELECT max(i.last_device_sync) AS last_device_sync, max(i.finished_at) AS last_ingest_at,
               min(i.local_date) FILTER (WHERE i.status = 'ok' AND i.rows_loaded > 0) AS first_data_date,
               max(i.local_date) FILTER (WHERE i.status = 'ok' AND i.rows_loaded > 0) AS last_data_date,
               array_agg(DISTINCT i.source ORDER BY i.source) AS sources
          FROM wearables.ingest_status i WHERE i.participant_id = p.participant_id) s ON true
  LEFT JOIN LATERAL (
        SELECT a.as_of, count(*) FILTER (WHERE d.valid_day) AS valid_days, count(d.local_date) AS summarised_days
          FROM (SELECT coalesce(%(as_of)s::date, (now() AT TIME ZONE p.time_zone)::date) AS as_of) a
          LEFT JOIN wearables.participant_day_summary d
            ON d.participant_id = p.participant_id AND d.local_date >= a.as_of - 7 AND d.local_date < a.as_of
         GROUP BY a.as_of) v ON true
 WHERE %(include_removed)s OR p.in_roster
 ORDER BY p.participant_id
"""


def participants_overview(conn: psycopg.Connection, as_of: date | None, include_removed: bool) -> list[dict[str, Any]]:
    """Every participant with sync, auth and valid-day state.

    "Last 7 days" are the seven complete local days before ``as_of`` (default: the participant's
    own today), because today's summary is still filling up. The auth state comes from the view
    ``wearables.auth_states``: the API's login may not read the token table itself.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_PARTICIPANTS, {"as_of": as_of, "include_removed": include_removed}).fetchall()


def database_ok(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1").fetchone() == (1,)
