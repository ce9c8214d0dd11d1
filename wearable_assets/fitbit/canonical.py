"""Canonical rows both adapters produce, and the participant-day window they must fall in.

A participant-day is the participant's civil day ``[D 00:00, D+1 00:00)`` in their own time zone,
converted to UTC once (``DayWindow``). On DST days that window is 23 or 25 hours long. Every
intraday row must have ``window.start <= ts < window.end``: the load deletes exactly that
range before inserting, so a row outside it would be duplicated by the neighbouring day's load.
Rows an API returns outside the window (travel, provider quirks) are dropped and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

from wearable_assets.fitbit.metrics import METRICS

INTRADAY_TABLE = "wearables.fitbit_intraday"
INTRADAY_COLUMNS = ("participant_id", "metric", "ts", "value", "utc_offset_min", "source", "device")
SLEEP_TABLE = "wearables.fitbit_sleep_stages"
SLEEP_COLUMNS = (
    "participant_id", "sleep_date", "log_id", "stage", "start_ts", "end_ts", "is_short", "is_main_sleep", "source",
)


class IntradayRow(NamedTuple):
    participant_id: str
    metric: str
    ts: datetime
    value: float
    utc_offset_min: int | None
    source: str
    device: str | None


class SleepStageRow(NamedTuple):
    participant_id: str
    sleep_date: date
    log_id: str
    stage: str
    start_ts: datetime
    end_ts: datetime
    is_short: bool
    is_main_sleep: bool | None
    source: str


@dataclass(frozen=True)
class DayWindow:
    """The UTC instants bounding a participant's civil day."""

    day: date
    tz: ZoneInfo
    start: datetime
    end: datetime

    @classmethod
    def of(cls, day: date, tz: ZoneInfo | str) -> "DayWindow":
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        start = datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(timezone.utc)
        return cls(day=day, tz=zone, start=start, end=end)

    @property
    def minutes(self) -> int:
        """1440 on most days, 1380 / 1500 on DST transition days."""
        return int((self.end - self.start).total_seconds() // 60)

    def contains(self, ts: datetime) -> bool:
        return self.start <= ts < self.end

    def offset_min(self, ts: datetime) -> int:
        offset = ts.astimezone(self.tz).utcoffset()
        return int(offset.total_seconds() // 60) if offset is not None else 0


@dataclass
class ParsedDay:
    """Everything one participant-day's payloads yielded, plus what was dropped and why."""

    window: DayWindow
    participant_id: str
    source: str
    intraday: list[IntradayRow] = field(default_factory=list)
    sleep: list[SleepStageRow] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    daily_totals: dict[str, float] = field(default_factory=dict)
    last_device_sync: datetime | None = None
    notes: list[str] = field(default_factory=list)
    _seen: set[tuple[str, datetime]] = field(default_factory=set, repr=False)

    def add(self, metric: str, ts: datetime, value: float | None, offset_min: int | None, device: str | None) -> None:
        """Add one sample if it belongs to this day and is not a duplicate of an earlier one.

        Duplicates (same metric and instant) happen when two data sources report the same
        minute; the first one seen wins, in the payload order the adapter fixes.
        """
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: add it to wearable_assets/fitbit/metrics.py first")
        if value is None:
            self.dropped[f"{metric}:no_value"] += 1
            return
        if not self.window.contains(ts):
            self.dropped[f"{metric}:outside_day"] += 1
            return
        key = (metric, ts)
        if key in self._seen:
            self.dropped[f"{metric}:duplicate"] += 1
            return
        self._seen.add(key)
        if offset_min is None:
            offset_min = self.window.offset_min(ts)
        self.intraday.append(
            IntradayRow(self.participant_id, metric, ts, float(value), offset_min, self.source, device)
        )

    def add_stage(self, log_id: str, stage: str, start: datetime, end: datetime, *, is_short: bool,
                  is_main_sleep: bool | None) -> None:
        if end <= start:
            self.dropped["sleep:empty_stage"] += 1
            return
        self.sleep.append(
            SleepStageRow(self.participant_id, self.window.day, log_id, stage, start, end, is_short,
                          is_main_sleep, self.source)
        )

    # --- summaries for metadata / ingest_status -------------------------------------------
    def rows_per_metric(self) -> dict[str, int]:
        return dict(sorted(Counter(r.metric for r in self.intraday).items()))

    def hr_completeness(self) -> float:
        """Percent of the day's minutes (1380/1440/1500) with at least one heart-rate sample."""
        minutes = {int((r.ts - self.window.start).total_seconds() // 60) for r in self.intraday if r.metric == "heart_rate"}
        return round(100.0 * len(minutes) / self.window.minutes, 2)

    def time_range(self) -> tuple[datetime, datetime] | None:
        stamps = [r.ts for r in self.intraday] + [s.start_ts for s in self.sleep] + [s.end_ts for s in self.sleep]
        return (min(stamps), max(stamps)) if stamps else None


def parse_rfc3339(text: str) -> datetime:
    """``2026-11-20T14:00:00Z`` / ``…+00:00`` / fractional seconds -> aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return value.astimezone(timezone.utc)


def parse_duration_s(text: str | int | float | None) -> int | None:
    """Google's durations and offsets: ``"-18000s"`` -> -18000."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return int(text)
    return int(float(str(text).rstrip("s")))


def localize(naive: datetime, tz: ZoneInfo, *, fold: int = 0) -> datetime:
    """Local wall-clock time -> aware UTC. ``fold=1`` picks the second of a repeated hour."""
    return naive.replace(tzinfo=tz, fold=fold).astimezone(timezone.utc)
