"""Refresh the rollup tables for a set of partitions: plain functions the assets call thinly.

Each function replaces exactly the rows of the partitions it is given, DELETE then INSERT in
ONE transaction: a re-run never duplicates, and a failure leaves the previous rollup in place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from wearable_assets import plausibility, settings
from wearable_assets.fitbit.metrics import METRICS
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.rollups import queries
from wearable_assets.storage import migrations
from wearable_assets.storage.timescale import Timescale

log = logging.getLogger(__name__)

DEFAULT_MIN_WEAR_MINUTES = 600
#: Version of the valid-day *logic* (not its threshold, which is stored next to it).
#: Bump it when the rule changes meaning, so old and new verdicts can be told apart.
#: 1: any heart-rate sample made a Fitbit minute worn. 2: only plausible ones do (values
#: outside ``plausibility.FITBIT_RANGES`` are quarantined or, if still stored, ignored).
VALID_DAY_RULE_VERSION = "2"


class UnknownParticipants(RuntimeError):
    """Partitions name participants that ``wearables.participants`` does not know."""


@dataclass(frozen=True)
class ValidDayRule:
    """A participant-day is valid when a device was worn for at least ``min_wear_minutes``.

    Fitbit wear = minutes with at least one plausible heart-rate sample; ActiGraph wear = the
    CentrePoint ``wearMinutes`` of the day (NULL when it was implausible). Either device can
    make the day valid.
    """

    min_wear_minutes: int = DEFAULT_MIN_WEAR_MINUTES
    version: str = VALID_DAY_RULE_VERSION

    @classmethod
    def from_env(cls) -> ValidDayRule:
        minutes = settings.integer(settings.MIN_WEAR_ENV, DEFAULT_MIN_WEAR_MINUTES, minimum=1, maximum=1500,
                                   unit="minutes")
        return cls(min_wear_minutes=minutes)

    @property
    def text(self) -> str:
        return f"wear_minutes >= {self.min_wear_minutes}"


def day_params(days: Sequence[ParticipantDay]) -> dict[str, Any]:
    return {"participant_ids": [d.participant_id for d in days], "dates": [d.day for d in days]}


def _require_known(conn: psycopg.Connection, params: dict[str, Any]) -> None:
    unknown = [r[0] for r in conn.execute(queries.UNKNOWN_PARTICIPANTS, params).fetchall()]
    if unknown:
        raise UnknownParticipants(
            f"participant(s) {', '.join(unknown)} are not in wearables.participants, so their time zone "
            "and devices are unknown: run `wearable-assets roster sync` (or let the roster sensor tick) first"
        )


def metric_params() -> dict[str, Any]:
    """The metric vocabulary with each metric's plausibility range, as the rollup SQL takes them:
    values outside are left out of every rollup (the loader quarantines them; see
    ``plausibility``)."""
    metrics = list(METRICS)
    ranges = [plausibility.FITBIT_RANGES[m] for m in metrics]
    return {"metrics": metrics, "lows": [r.low for r in ranges], "highs": [r.high for r in ranges]}


@dataclass(frozen=True)
class OutOfRule:
    """Samples of one participant-day and metric still in ``fitbit_intraday`` outside the metric's
    plausibility range: loaded before the rules existed, or written around the loader."""

    participant_id: str
    local_date: date
    metric: str
    samples: int
    min_value: float
    max_value: float

    def __str__(self) -> str:
        rule = plausibility.FITBIT_RANGES[self.metric].text(self.metric)
        return (f"{self.local_date}|{self.participant_id}: {self.samples} {self.metric} sample(s) in "
                f"fitbit_intraday outside {rule} (min {self.min_value:g}, max {self.max_value:g}); the rollups "
                "ignore them, re-materialise fitbit/intraday to quarantine them")


def out_of_rule(timescale: Timescale, days: Sequence[ParticipantDay]) -> list[OutOfRule]:
    """Participant-days whose ``fitbit_intraday`` rows break the plausibility rules (see ``OutOfRule``)."""
    return [OutOfRule(*row) for row in timescale.fetch(queries.OUT_OF_RULE, day_params(days) | metric_params())]


def quarantined_by_day(
    timescale: Timescale, days: Sequence[ParticipantDay], devices: Sequence[str] = ("fitbit", "actigraph")
) -> dict[ParticipantDay, list[str]]:
    """What the loaders quarantined for ``days`` (only the participant-days that have any), one
    line per device, metric and rule: count, value range, rule and version, and an example reason.

    The checks ``values_plausible`` report this; the summary counts the same rows."""
    params = day_params(days) | {"devices": list(devices)}
    out: dict[ParticipantDay, list[str]] = {}
    for pid, day, device, metric, rule, version, n, low, high, reason in timescale.fetch(queries.QUARANTINED, params):
        span = f"{low:g}" if low == high else f"{low:g}..{high:g}"
        out.setdefault(ParticipantDay(day, pid), []).append(
            f"{device} {metric}: {n} value(s) quarantined ({span}) by rule '{rule}' v{version}, e.g. {reason}")
    return out


@dataclass(frozen=True)
class RefreshResult:
    partitions: int
    deleted: int
    inserted: int


def _replace(timescale: Timescale, delete: str, insert: str, params: dict[str, Any]) -> RefreshResult:
    with timescale.connect() as conn:
        _require_known(conn, params)
        with conn.transaction():
            deleted = conn.execute(delete, params).rowcount
            inserted = conn.execute(insert, params).rowcount
    return RefreshResult(len(params["dates"]), deleted, inserted)


def refresh_intraday_hourly(timescale: Timescale, days: Sequence[ParticipantDay]) -> RefreshResult:
    """Recompute ``wearables.intraday_hourly`` for ``days`` from ``wearables.fitbit_intraday``
    (plausible values only, see ``metric_params``)."""
    params = day_params(days) | metric_params()
    return _replace(timescale, queries.DELETE_HOURLY, queries.INSERT_HOURLY, params)


def refresh_participant_day_summary(
    timescale: Timescale, days: Sequence[ParticipantDay], rule: ValidDayRule
) -> RefreshResult:
    """Recompute ``wearables.participant_day_summary`` for ``days`` (one row each)."""
    params = day_params(days) | metric_params() | {
        "min_wear_minutes": rule.min_wear_minutes,
        "rule": rule.text,
        "rule_version": rule.version,
    }
    return _replace(timescale, queries.DELETE_SUMMARY, queries.INSERT_SUMMARY, params)


def refresh_cohort_week(timescale: Timescale, week_start: date) -> list[dict[str, Any]]:
    """Recompute ``wearables.cohort_week`` for the ISO week starting ``week_start`` (a Monday)."""
    if week_start.isoweekday() != 1:
        raise ValueError(f"week_start {week_start} is a {week_start:%A}; cohort weeks start on Monday (ISO)")
    params = {"week_start": week_start}
    with timescale.connect() as conn:
        with conn.transaction():
            conn.execute(queries.DELETE_COHORT_WEEK, params)
            rows = conn.execute(queries.INSERT_COHORT_WEEK, params).fetchall()
    return [dict(zip(queries.COHORT_WEEK_COLUMNS, row)) for row in rows]


# --- continuous aggregates (Timescale licence only) ----------------------------------------------
CONTINUOUS_AGGREGATES = (
    "wearables.fitbit_intraday_1min",
    "wearables.fitbit_intraday_1h",
    "wearables.fitbit_intraday_1d",
)


@dataclass(frozen=True)
class AggregateRefresh:
    refreshed: list[str]
    skipped_reason: str | None


def refresh_continuous_aggregates(timescale: Timescale, days: Sequence[ParticipantDay]) -> AggregateRefresh:
    """Bring the continuous aggregates up to date for the time span of ``days``.

    Their refresh policies only look back a few days, so a backfilled past day would otherwise
    stay missing from them. On the Apache edition they do not exist (sql/tsl/ is skipped) and
    ``wearables.intraday_hourly`` is the only hourly rollup: say so rather than fail.
    """
    with timescale.connect(autocommit=True) as conn:  # CALL refresh_… refuses to run in a transaction
        license_ = migrations.timescale_license(conn)
        if license_ != "timescale":
            reason = (
                f"continuous aggregates skipped: timescaledb.license is '{license_}' (they need 'timescale'); "
                "wearables.intraday_hourly is the hourly rollup"
            )
            return AggregateRefresh([], reason)
        existing = [
            name for name in CONTINUOUS_AGGREGATES
            if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None  # type: ignore[index]
        ]
        if not existing or not days:
            missing = "continuous aggregates not created yet (migration tsl/001 not applied)"
            return AggregateRefresh([], missing if not existing else None)
        lo, hi = conn.execute(queries.TARGET_SPAN, day_params(days)).fetchone()  # type: ignore[misc]
        for name in existing:  # in dependency order: 1 min feeds 1 h feeds 1 day
            conn.execute(
                sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
                    sql.Literal(name), sql.Literal(lo), sql.Literal(hi)
                )
            )
    return AggregateRefresh(existing, None)
