"""Canonical rows both adapters produce, and the participant-day window they must fall in.

A participant-day is the participant's civil day ``[D 00:00, D+1 00:00)`` in their own time zone,
converted to UTC once (``DayWindow``). On DST days that window is 23 or 25 hours long. Every
intraday row must have ``window.start <= ts < window.end``: the load deletes exactly that
range before inserting, so a row outside it would be duplicated by the neighbouring day's load.
Rows an API returns outside the window (travel, provider quirks) are dropped and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from wearable_assets.fitbit.metrics import METRICS

INTRADAY_TABLE = "wearables.fitbit_intraday"
INTRADAY_COLUMNS = ("participant_id", "metric", "ts", "value", "utc_offset_min", "source", "device")
SLEEP_TABLE = "wearables.fitbit_sleep_stages"
SLEEP_COLUMNS = (
    "participant_id", "sleep_date", "log_id", "stage", "start_ts", "end_ts", "is_short", "is_main_sleep", "source",
)


#: One ``wearables.fitbit_intraday`` row, in ``INTRADAY_COLUMNS`` order: (participant_id, metric,
#: ts, value, utc_offset_min, source, device). A plain tuple, not a NamedTuple: a 1-s day makes
#: ~90K of them and a NamedTuple costs several times more to build.
IntradayRow = tuple[str, str, datetime, float, "int | None", str, "str | None"]
#: What parsers hand to ``ParsedDay.add_series``: (ts, value, utc_offset_min, device).
Sample = tuple[datetime, "float | None", "int | None", "str | None"]


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
    """What one participant-day's payloads yielded: the rows (streamed out in batches with
    ``drain``, so a day never has to sit in memory twice) and a running summary of them.

    Parsers call ``add``/``add_stage`` per sample; ``stream_rows`` hands the intraday rows to the
    loader payload by payload, so parsing overlaps with the database's COPY work.
    """

    window: DayWindow
    participant_id: str
    source: str
    sleep: list[SleepStageRow] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    daily_totals: dict[str, float] = field(default_factory=dict)
    last_device_sync: datetime | None = None
    notes: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    _buffer: list[IntradayRow] = field(default_factory=list, repr=False)
    _seen: dict[str, set[datetime]] = field(default_factory=dict, repr=False)  # per metric
    _hr_minutes: set[tuple[int, int, int]] = field(default_factory=set, repr=False)

    def add(self, metric: str, ts: datetime, value: float | None, offset_min: int | None, device: str | None) -> None:
        """Add one sample (see ``add_series``)."""
        self.add_series(metric, [(ts, value, offset_min, device)])

    def add_series(self, metric: str, samples: Iterable[Sample]) -> None:
        """Add the samples that belong to this day and are not duplicates of earlier ones.

        Duplicates (same metric and instant) happen when two data sources report the same
        minute; the first one seen wins, in the payload order the manifest fixes. This loop runs
        once per sample of the day (86,400 for 1-s heart rate), hence the local variables.
        """
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: add it to wearable_assets/fitbit/metrics.py first")
        start, end, append = self.window.start, self.window.end, self._buffer.append
        seen = self._seen.setdefault(metric, set())
        participant_id, source = self.participant_id, self.source
        no_value = outside = duplicate = 0
        for ts, value, offset_min, device in samples:
            if value is None:
                no_value += 1
            elif not (start <= ts < end):
                outside += 1
            elif ts in seen:
                duplicate += 1
            else:
                seen.add(ts)
                if offset_min is None:
                    offset_min = self.window.offset_min(ts)
                append((participant_id, metric, ts, float(value), offset_min, source, device))
        for reason, count in (("no_value", no_value), ("outside_day", outside), ("duplicate", duplicate)):
            if count:
                self.dropped[f"{metric}:{reason}"] += count

    def drain(self) -> list[IntradayRow]:
        """The rows added since the last drain (and fold them into the summary)."""
        batch, self._buffer = self._buffer, []
        if batch:
            stamps = [row[2] for row in batch]
            low, high = min(stamps), max(stamps)
            self.first_ts = low if self.first_ts is None else min(self.first_ts, low)
            self.last_ts = high if self.last_ts is None else max(self.last_ts, high)
            self.counts.update(row[1] for row in batch)
            # (day, hour, minute) names a UTC minute uniquely inside a <= 25 h window, and is
            # much cheaper than truncating each timestamp.
            self._hr_minutes.update((t.day, t.hour, t.minute) for t, row in zip(stamps, batch)
                                    if row[1] == "heart_rate")
        return batch

    def add_stage(self, log_id: str, stage: str, start: datetime, end: datetime, *, is_short: bool,
                  is_main_sleep: bool | None) -> None:
        if end <= start:
            self.dropped["sleep:empty_stage"] += 1
            return
        self.sleep.append(
            SleepStageRow(self.participant_id, self.window.day, log_id, stage, start, end, is_short,
                          is_main_sleep, self.source)
        )

    # --- summaries for metadata / ingest_status (complete once the rows are drained) -----
    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def rows_per_metric(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def hr_completeness(self) -> float:
        """Percent of the day's minutes (1380/1440/1500) with at least one heart-rate sample.
        (UTC offsets are whole minutes, so UTC minutes are the local minutes.)"""
        return round(100.0 * len(self._hr_minutes) / self.window.minutes, 2)

    def time_range(self) -> tuple[datetime, datetime] | None:
        stamps = [t for t in (self.first_ts, self.last_ts) if t is not None]
        stamps += [s.start_ts for s in self.sleep] + [s.end_ts for s in self.sleep]
        return (min(stamps), max(stamps)) if stamps else None


#: ``parse_payload(day, name, document)``: what each adapter's parser module provides.
PayloadParser = Callable[[ParsedDay, str, Any], None]


def stream_rows(day: ParsedDay, parse_payload: PayloadParser,
                payloads: Iterable[tuple[str, Any]]) -> Iterator[IntradayRow]:
    """Parse payload after payload, yielding each one's intraday rows as soon as it is parsed.
    Sleep stages and the summary are on ``day`` once the iterator is exhausted."""
    for name, document in payloads:
        parse_payload(day, name, document)
        yield from day.drain()


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
