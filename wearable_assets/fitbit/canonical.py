"""Canonical rows both adapters produce, and the participant-day window they must fall in.

A participant-day is the participant's civil day ``[D 00:00, D+1 00:00)`` in their own time zone,
converted to UTC once (``DayWindow``). On DST days that window is 23 or 25 hours long. Every
intraday row must have ``window.start <= ts < window.end``: the load deletes exactly that
range before inserting, so a row outside it would be duplicated by the neighbouring day's load.

The roster zone owns the day, not the device: a wearer whose device is in another zone (travel)
still has participant-days that tile time without gaps or overlaps, so each sample belongs to
exactly one of them. The adapters must therefore *fetch* by this window (Google Health: physical
time filters), not by the device's civil date. Rows an API still returns outside the window
(the legacy adapter's two-night SpO2/HRV fetch, provider quirks) are another participant-day's:
they are dropped here and counted as ``outside_day``, and that day's own load keeps them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from wearable_assets.fitbit.metrics import METRICS

INTRADAY_TABLE = "wearables.fitbit_intraday"
INTRADAY_COLUMNS = ("participant_id", "metric", "ts", "value", "utc_offset_min", "source", "device")
SLEEP_TABLE = "wearables.fitbit_sleep_stages"
SLEEP_COLUMNS = (
    "participant_id", "sleep_date", "log_id", "stage", "start_ts", "end_ts", "is_short", "is_main_sleep", "source",
)
SLEEP_SESSION_TABLE = "wearables.fitbit_sleep_sessions"
SLEEP_SESSION_COLUMNS = (
    "participant_id", "sleep_date", "log_id", "start_ts", "end_ts", "is_main_sleep", "sleep_type", "state",
    "stages_status", "info_code", "minutes_asleep", "stage_rows", "source",
)


#: One ``wearables.fitbit_intraday`` row, in ``INTRADAY_COLUMNS`` order: (participant_id, metric,
#: ts, value, utc_offset_min, source, device). A plain tuple, not a NamedTuple: a 1-s day makes
#: ~90K of them and a NamedTuple costs several times more to build.
IntradayRow = tuple[str, str, datetime, float, "int | None", str, "str | None"]
#: What parsers hand to ``ParsedDay.add_series``: (ts, value, utc_offset_min, device).
Sample = tuple[datetime, "float | None", "int | None", "str | None"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


_NUMPY_TYPES: dict[pa.DataType, np.dtype] = {
    pa.int8(): np.dtype(np.int8), pa.int16(): np.dtype(np.int16), pa.int32(): np.dtype(np.int32),
    pa.int64(): np.dtype(np.int64), pa.float64(): np.dtype(np.float64)}


def as_numpy(values: pa.Array) -> np.ndarray:
    """A null-free Arrow array of a fixed-width type as a numpy view of its buffer.

    Not ``Array.to_numpy``: pyarrow imports pandas for it, which costs a fresh process ~0.2 s
    and ~70 MB, more than the whole Google heart-rate day's columns."""
    if values.null_count:
        raise ValueError("as_numpy needs an array without nulls")
    dtype = np.dtype(np.int64) if pa.types.is_timestamp(values.type) else _NUMPY_TYPES[values.type]
    return np.frombuffer(values.buffers()[1], dtype=dtype, count=len(values), offset=values.offset * dtype.itemsize)


def timestamps_us(stamps: pa.Array) -> np.ndarray:
    """An Arrow timestamp[us] array as int64 microseconds since the Unix epoch."""
    return as_numpy(stamps.cast(pa.timestamp("us", tz="UTC")))


def epoch_us(ts: datetime) -> int:
    """Aware datetime -> microseconds since the Unix epoch (the columnar form of ``ts``)."""
    return (ts - EPOCH) // _US


@dataclass(frozen=True)
class Batch:
    """Intraday rows of ONE metric in columns (one payload's worth, after the day's filters).

    Columns rather than tuples because the hot paths (a 1-s heart-rate day) then never build a
    Python object per sample: the Google parser fills them from Arrow, and the TimescaleDB load
    encodes them to binary COPY with numpy (``fitbit.pgcopy``). ``device`` holds codes into
    ``devices`` (a day has one or two distinct devices)."""

    metric: str
    ts: np.ndarray  # int64, microseconds since the Unix epoch (UTC)
    value: np.ndarray  # float64
    offset: np.ndarray  # int16, utc_offset_min (never missing once in a batch)
    device: np.ndarray  # intp codes into ``devices``
    devices: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self, participant_id: str, source: str) -> Iterator[IntradayRow]:
        """The batch as ``IntradayRow`` tuples (the lake and the benchmark's alternatives use them)."""
        metric, devices = self.metric, self.devices
        for us, value, offset, code in zip(self.ts.tolist(), self.value.tolist(), self.offset.tolist(),
                                           self.device.tolist()):
            yield participant_id, metric, EPOCH + timedelta(microseconds=us), value, offset, source, devices[code]


@dataclass
class Payload:
    """One landed response body. Parsers that can read the bytes column-wise (Google's
    point lists) do; the others ask for ``document``, decoded once on first use, so a payload
    is never held as both bytes-derived columns and a tree of Python dicts."""

    name: str
    body: bytes
    decode: Callable[[bytes], Any]
    _document: Any = field(default=None, repr=False)
    _decoded: bool = field(default=False, repr=False)

    @property
    def document(self) -> Any:
        if not self._decoded:
            self._document, self._decoded = self.decode(self.body), True
        return self._document


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


class SleepSessionRow(NamedTuple):
    """One sleep session of the wake date, staged or not (``state`` says which, and why not)."""

    participant_id: str
    sleep_date: date
    log_id: str
    start_ts: datetime
    end_ts: datetime
    is_main_sleep: bool | None
    sleep_type: str | None
    state: str
    stages_status: str | None
    info_code: int | None
    minutes_asleep: int | None
    stage_rows: int
    source: str


#: ``SleepSessionRow.state`` of a session whose stage rows were recorded.
STAGED = "staged"
#: The provider has not computed the stages yet: re-run the day later.
PENDING = "pending"
#: No stages and no reason given (e.g. a legacy log without ``levels``).
NO_STAGES = "no_stages"


@dataclass(frozen=True)
class DayWindow:
    """The UTC instants bounding a participant's civil day."""

    day: date
    tz: ZoneInfo
    start: datetime
    end: datetime

    @classmethod
    def of(cls, day: date, tz: ZoneInfo | str) -> DayWindow:
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


def _first_occurrences(values: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct value, in ascending index order.
    (Sort-based: ``np.unique`` with ``return_index`` measured several times slower here.)"""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return np.sort(order[first])


def _in_sorted(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """``values`` present in the sorted array ``ordered``, element-wise."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return ordered[at] == values


@dataclass
class ParsedDay:
    """What one participant-day's payloads yielded: the rows (streamed out in batches with
    ``drain``, so a day never has to sit in memory twice) and a running summary of them.

    Parsers call ``add``/``add_series`` (per sample), ``add_columns`` (column-wise) and
    ``add_stage``; ``stream_batches`` hands the intraday rows to the loader payload by payload,
    so parsing overlaps with the database's COPY work. ``add_session`` records every sleep
    session of the wake date, staged or not.
    """

    window: DayWindow
    participant_id: str
    source: str
    sleep: list[SleepStageRow] = field(default_factory=list)
    sleep_sessions: list[SleepSessionRow] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    daily_totals: dict[str, float] = field(default_factory=dict)
    last_device_sync: datetime | None = None
    notes: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    _buffer: list[Batch] = field(default_factory=list, repr=False)
    _seen: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per metric, sorted epoch us
    _hr_minutes: set[int] = field(default_factory=set, repr=False)  # UTC minutes since the epoch

    def add(self, metric: str, ts: datetime, value: float | None, offset_min: int | None, device: str | None) -> None:
        """Add one sample (see ``add_series``)."""
        self.add_series(metric, [(ts, value, offset_min, device)])

    def add_series(self, metric: str, samples: Iterable[Sample]) -> None:
        """Add the samples that belong to this day and are not duplicates of earlier ones
        (``add_columns`` does the filtering; this turns per-sample tuples into columns).

        Samples without a value are dropped here; a missing offset is the roster zone's at ``ts``.
        """
        self._check_metric(metric)
        stamps: list[datetime] = []
        values: list[float] = []
        offsets: list[int] = []
        labels: list[str | None] = []
        no_value = 0
        offset_of = self.window.offset_min
        for ts, value, offset_min, device in samples:
            if value is None:
                no_value += 1
                continue
            stamps.append(ts)
            values.append(float(value))
            offsets.append(offset_of(ts) if offset_min is None else offset_min)
            labels.append(device)
        if no_value:
            self.dropped[f"{metric}:no_value"] += no_value
        devices = tuple(dict.fromkeys(labels))
        code = {label: i for i, label in enumerate(devices)}
        self.add_columns(
            metric,
            np.array([epoch_us(ts) for ts in stamps], dtype=np.int64),  # (pa.array would import pandas)
            np.array(values, dtype=np.float64),
            np.array(offsets, dtype=np.int16),
            np.array([code[label] for label in labels], dtype=np.intp),
            devices,
        )

    def add_columns(self, metric: str, ts: np.ndarray, value: np.ndarray, offset: np.ndarray,
                    device: np.ndarray, devices: tuple[str | None, ...]) -> None:
        """Add samples given as columns (every one with a value and an offset).

        Kept: inside the day's window and not a duplicate. Duplicates (same metric and instant)
        happen when two data sources report the same minute; the first one seen wins, in the
        payload order the manifest fixes, then in the order of the payload's samples.
        """
        self._check_metric(metric)
        start, end = epoch_us(self.window.start), epoch_us(self.window.end)
        candidates = np.flatnonzero((ts >= start) & (ts < end))
        keep = np.zeros(len(ts), dtype=bool)
        keep[candidates[_first_occurrences(ts[candidates])]] = True
        seen = self._seen.get(metric)
        if seen is not None:
            keep[keep] = ~_in_sorted(ts[keep], seen)
        kept = ts[keep]
        self._seen[metric] = np.sort(kept if seen is None else np.concatenate([seen, kept]))
        outside = int(len(ts) - len(candidates))
        duplicate = int(len(candidates) - len(kept))
        for reason, count in (("outside_day", outside), ("duplicate", duplicate)):
            if count:
                self.dropped[f"{metric}:{reason}"] += count
        if len(kept):
            self._buffer.append(Batch(metric, kept, value[keep], offset[keep], device[keep], devices))

    @staticmethod
    def _check_metric(metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: add it to wearable_assets/fitbit/metrics.py first")

    def drain(self) -> list[Batch]:
        """The batches added since the last drain (and fold them into the summary)."""
        batches, self._buffer = self._buffer, []
        for batch in batches:
            low = EPOCH + timedelta(microseconds=int(batch.ts.min()))
            high = EPOCH + timedelta(microseconds=int(batch.ts.max()))
            self.first_ts = low if self.first_ts is None else min(self.first_ts, low)
            self.last_ts = high if self.last_ts is None else max(self.last_ts, high)
            self.counts[batch.metric] += len(batch)
            if batch.metric == "heart_rate":
                minutes = np.sort(batch.ts // 60_000_000)
                self._hr_minutes.update(minutes[_first_occurrences(minutes)].tolist())
        return batches

    def add_stage(self, log_id: str, stage: str, start: datetime, end: datetime, *, is_short: bool,
                  is_main_sleep: bool | None) -> None:
        if end <= start:
            self.dropped["sleep:empty_stage"] += 1
            return
        self.sleep.append(
            SleepStageRow(self.participant_id, self.window.day, log_id, stage, start, end, is_short,
                          is_main_sleep, self.source)
        )

    def add_session(self, log_id: str, start: datetime, end: datetime, *, is_main_sleep: bool | None,
                    sleep_type: str | None, stage_rows: int, pending: bool = False,
                    stages_status: str | None = None, info_code: int | None = None,
                    minutes_asleep: int | None = None) -> None:
        """Record a session of this wake date, whether or not it has stages, so a night the
        provider has not staged (yet) is still visible. ``state``: ``pending`` when the provider
        says so, else ``staged`` when stage rows were recorded, else the provider's reason
        (Google's ``stagesStatus``, lower case) or ``no_stages``. A session seen twice (the same
        log id in two payloads) keeps its first occurrence, like the intraday rows."""
        if any(s.log_id == log_id for s in self.sleep_sessions):
            self.dropped["sleep:duplicate_session"] += 1
            return
        if pending:
            state = PENDING
        elif stage_rows:
            state = STAGED
        elif stages_status and stages_status.upper() not in ("SUCCEEDED", "STAGES_STATUS_UNSPECIFIED"):
            state = stages_status.lower()
        else:
            state = NO_STAGES
        self.sleep_sessions.append(SleepSessionRow(
            self.participant_id, self.window.day, log_id, start, end, is_main_sleep,
            sleep_type.lower() if sleep_type else None, state, stages_status, info_code, minutes_asleep,
            stage_rows, self.source))

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
        stamps += [s.start_ts for s in self.sleep_sessions] + [s.end_ts for s in self.sleep_sessions]
        return (min(stamps), max(stamps)) if stamps else None


#: ``parse_payload(day, payload)``: what each adapter's parser module provides.
PayloadParser = Callable[[ParsedDay, Payload], None]


def stream_batches(day: ParsedDay, parse_payload: PayloadParser, payloads: Iterable[Payload]) -> Iterator[Batch]:
    """Parse payload after payload, yielding each one's intraday rows as soon as it is parsed
    (only one payload's body is alive at a time). Sleep stages and sessions and the summary are
    on ``day`` once the iterator is exhausted."""
    for payload in payloads:
        parse_payload(day, payload)
        del payload  # the body (tens of MB for a Google heart-rate page set) can go now
        yield from day.drain()


def stream_rows(day: ParsedDay, parse_payload: PayloadParser, payloads: Iterable[Payload]) -> Iterator[IntradayRow]:
    """``stream_batches`` as ``IntradayRow`` tuples."""
    for batch in stream_batches(day, parse_payload, payloads):
        yield from batch.rows(day.participant_id, day.source)


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
