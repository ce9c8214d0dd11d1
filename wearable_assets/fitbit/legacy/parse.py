"""Legacy Fitbit Web API payloads -> canonical rows.

The legacy API has no time zones in its data: every time is the wearer's local wall clock,
without offset. We convert with the participant's IANA zone, and two DST cases need care:

* **fall back**: the repeated hour appears twice in a day's dataset; the data is in time order,
  so once a time goes *backwards* we are in the second pass and use ``fold=1``;
* **sleep**: stage times are rendered with the offset of the session's start, so we convert
  ``startTime`` once and place every stage by its distance from it (never each one on its own).

Other shapes: the daily ``value`` fields are strings while intraday values are numbers; the
heart summary comes in two shapes (resting HR inside ``value`` or absent); breathing rate uses
``-1`` for "no value"; SpO2/HRV by date range return a top-level list (one entry per night).

Intraday datasets (86,400 entries for 1-s heart rate) are read with Arrow and converted with
numpy when they are in the plain form (``HH:MM:SS`` times, numeric values): see
``_parse_intraday_columnar`` and ``_LocalDay.columns_of_chars``. Any other form goes through
the per-entry code, which accepts what it always accepted or names the bad entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from wearable_assets.fitbit import arrow_json
from wearable_assets.fitbit.canonical import ParsedDay, Payload, Sample, as_numpy, epoch_us, localize

SOURCE = "fitbit_legacy"
_METRIC_OF = {"heart": "heart_rate", "steps": "steps", "calories": "calories", "distance": "distance",
              "floors": "floors"}
_DISTANCE_TO_M = 1000.0  # km: no Accept-Language header is sent, so the API uses metric units
_SECONDS = {f"{i:02d}": timedelta(seconds=i) for i in range(60)}


class PayloadError(ValueError):
    """A payload that is valid JSON but not the documented shape."""


class _LocalDay:
    """``HH:MM:SS`` wall-clock times of one local day, in order -> (UTC instant, offset minutes).

    Once a time goes backwards we are in the repeat of a fall-back hour (``fold=1``). The UTC
    start of each local minute is computed once per (minute, fold) and the seconds are added:
    a 1-s heart-rate day has 86,400 times but only 1,440 minutes and at most two offsets.
    """

    def __init__(self, day: date, tz: Any) -> None:
        self.tz = tz
        self.midnight = datetime.combine(day, time.min)
        self.minutes: dict[tuple[str, int], tuple[datetime, int]] = {}
        self.fold = 0
        self.previous = ""

    def utc(self, clock: str) -> tuple[datetime, int]:
        minute = clock[:5]
        if minute < self.previous:
            self.fold = 1
        self.previous = minute
        start = self.minutes.get((minute, self.fold))
        if start is None:
            start = self.minutes[(minute, self.fold)] = self.minute_start(int(minute[:2]), int(minute[3:5]),
                                                                          self.fold)
        return start[0] + _SECONDS[clock[6:8]], start[1]

    def minute_start(self, hours: int, minutes: int, fold: int) -> tuple[datetime, int]:
        """(UTC instant, offset minutes) of a local wall-clock minute of the day."""
        naive = self.midnight + timedelta(hours=hours, minutes=minutes)
        local = naive.replace(tzinfo=self.tz, fold=fold)
        offset = local.utcoffset() or timedelta(0)
        return local.astimezone(timezone.utc), int(offset.total_seconds()) // 60

    def columns(self, times: list[Any], values: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``utc`` for a whole dataset at once: (epoch us, value, offset minutes), or None if
        it is not plain ``HH:MM:SS`` times (within the day) and numbers, for which the per-entry
        path decides (it accepts some other forms, or names the bad entry)."""
        clock = np.array(times)
        number = np.array(values)
        if clock.dtype != np.dtype("<U8") or number.dtype.kind not in "biuf" or clock.shape != number.shape:
            return None
        return self.columns_of_chars(clock.view(np.uint32).reshape(-1, 8), number.astype(np.float64))

    def columns_of_chars(self, chars: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``columns`` for times given as an (n, 8) array of character codes.

        The fold rule, vectorised: fold is 1 from the first minute lower than its predecessor on.
        """
        digits = chars[:, [0, 1, 3, 4, 6, 7]].astype(np.int64) - ord("0")
        if len(chars) and ((digits < 0).any() or digits.max() > 9 or (chars[:, [2, 5]] != ord(":")).any()):
            return None
        hours = digits[:, 0] * 10 + digits[:, 1]
        minutes = digits[:, 2] * 10 + digits[:, 3]
        seconds = digits[:, 4] * 10 + digits[:, 5]
        if len(chars) and (hours.max() > 23 or minutes.max() > 59 or seconds.max() > 59):
            return None
        minute_of_day = hours * 60 + minutes
        backwards = np.zeros(len(minute_of_day), dtype=np.int64)
        backwards[1:] = minute_of_day[1:] < minute_of_day[:-1]
        key = minute_of_day * 2 + np.maximum.accumulate(backwards)  # (minute, fold) as one int
        present = np.flatnonzero(np.bincount(key)) if len(key) else key
        starts = [self.minute_start(int(k) // 120, int(k) // 2 % 60, int(k) % 2) for k in present.tolist()]
        start_us = np.array([epoch_us(start) for start, _ in starts], dtype=np.int64)
        offset = np.array([minutes_offset for _, minutes_offset in starts], dtype=np.int16)
        where = np.searchsorted(present, key)
        return start_us[where] + seconds * 1_000_000, values, offset[where]


def _stamps_in_order(stamps: Iterable[str], tz: Any) -> Iterator[datetime]:
    """Local ISO timestamps (``2021-10-04T04:02:17[.000]``) in order -> UTC, with the same fold rule."""
    fold = 0
    previous: datetime | None = None
    for text in stamps:
        naive = datetime.fromisoformat(text)
        if previous is not None and naive < previous:
            fold = 1
        previous = naive
        yield localize(naive, tz, fold=fold)


def _samples(name: str, clock: _LocalDay, times: list[Any], values: list[Any], scale: float) -> Iterator[Sample]:
    """The per-entry path (see ``_LocalDay.columns``), which names the entry that is wrong."""
    for index, (text, value) in enumerate(zip(times, values)):
        try:
            ts, offset = clock.utc(text)
            yield ts, float(value) * scale, offset, None
        except (TypeError, ValueError, KeyError) as exc:
            raise PayloadError(f"{SOURCE} payload {name}: dataset entry {index} "
                               f"({exc.__class__.__name__}: {exc})") from None


def _intraday_schema(resource: str) -> pa.Schema:
    """The fields ``parse_intraday`` reads: the dataset and the day's summary value."""
    summary = pa.struct([("restingHeartRate", pa.float64())]) if resource == "heart" else pa.string()
    point = pa.struct([("time", pa.string()), ("value", pa.float64())])
    return pa.schema([(f"activities-{resource}", pa.list_(pa.struct([("value", summary)]))),
                      (f"activities-{resource}-intraday", pa.struct([("dataset", pa.list_(point))]))])


def _parse_intraday_columnar(day: ParsedDay, name: str, body: bytes) -> bool:
    """``parse_intraday`` read by Arrow (no dict per entry); False if the body is not in the
    plain form (numbers for values, ``HH:MM:SS`` times): the caller then decodes it."""
    resource = name
    metric = _METRIC_OF[resource]
    table = arrow_json.read_object(body, _intraday_schema(resource))
    if table is None:
        return False
    intraday = table.column(f"activities-{resource}-intraday").combine_chunks()
    if intraday.null_count:
        return False
    dataset = intraday.field("dataset")
    if dataset.null_count:
        return False
    points = dataset.flatten()
    times, values = points.field("time"), points.field("value")
    if points.null_count or times.null_count or values.null_count:
        return False
    offsets = np.frombuffer(times.buffers()[1], dtype=np.int32, count=len(times) + 1, offset=times.offset * 4)
    if len(times) and (np.diff(offsets) != 8).any():
        return False
    chars = np.frombuffer(times.buffers()[2], dtype=np.uint8, count=8 * len(times), offset=int(offsets[0]))
    scale = _DISTANCE_TO_M if metric == "distance" else 1.0
    columns = _LocalDay(day.window.day, day.window.tz).columns_of_chars(chars.reshape(-1, 8), as_numpy(values))
    if columns is None:
        return False
    ts, value, offset = columns
    day.add_columns(metric, ts, value * scale, offset, np.zeros(len(ts), dtype=np.intp), (None,))
    summary = table.column(f"activities-{resource}").to_pylist()[0] or []
    first = summary[0] if summary else None
    if resource == "heart":
        value_of_day = (first or {}).get("value") or {}
        if value_of_day.get("restingHeartRate") is not None:
            day.add("resting_heart_rate", day.window.start, float(value_of_day["restingHeartRate"]), None, None)
    elif first is not None and first.get("value") is not None:
        day.daily_totals[metric if metric != "distance" else "distance_m"] = float(first["value"]) * scale
    return True


def parse_intraday(day: ParsedDay, name: str, document: dict[str, Any]) -> None:
    """HR (1 s) and activity (1 min) datasets of the local day."""
    resource = "heart" if name == "heart" else name
    metric = _METRIC_OF[resource]
    try:
        dataset = document[f"activities-{resource}-intraday"]["dataset"]
        times = [point["time"] for point in dataset]
        values = [point["value"] for point in dataset]
    except (KeyError, TypeError) as exc:
        raise PayloadError(
            f"{SOURCE} payload {name}: no 'activities-{resource}-intraday.dataset' "
            f"({exc.__class__.__name__}: {exc}); was intraday access granted for this app?"
        ) from None
    scale = _DISTANCE_TO_M if metric == "distance" else 1.0
    clock = _LocalDay(day.window.day, day.window.tz)
    columns = clock.columns(times, values)
    if columns is not None:
        ts, value, offset = columns
        day.add_columns(metric, ts, value * scale, offset, np.zeros(len(ts), dtype=np.intp), (None,))
    else:
        day.add_series(metric, _samples(name, clock, times, values, scale))
    summary = document.get(f"activities-{resource}") or []
    if resource == "heart":
        heart = summary[0].get("value") if summary and isinstance(summary[0], dict) else None
        if isinstance(heart, dict) and heart.get("restingHeartRate") is not None:
            day.add("resting_heart_rate", day.window.start, float(heart["restingHeartRate"]), None, None)
    elif summary and isinstance(summary[0], dict) and summary[0].get("value") is not None:
        day.daily_totals[metric if metric != "distance" else "distance_m"] = float(summary[0]["value"]) * scale


def parse_sleep(day: ParsedDay, document: dict[str, Any]) -> None:
    """Logs of the wake date (``dateOfSleep``): their ``levels`` as stages, and every log as a
    session, levels or not. A response marked ``meta.state = "pending"`` (reported by public
    client code, not documented) holds sleep whose levels are not computed yet."""
    tz = day.window.tz
    pending = isinstance(document.get("meta"), dict) and document["meta"].get("state") == "pending"
    for log in document.get("sleep", []):
        try:
            if log["dateOfSleep"] != day.window.day.isoformat():
                day.dropped["sleep:other_day"] += 1
                continue
            start_naive = datetime.fromisoformat(log["startTime"])
            start_utc = localize(start_naive, tz)
            if log.get("endTime"):
                end_utc = start_utc + (datetime.fromisoformat(log["endTime"]) - start_naive)
            else:
                end_utc = start_utc + timedelta(milliseconds=int(log["duration"]))
            log_id = str(log["logId"])
            main = log.get("isMainSleep")
            levels = log.get("levels") or {}
            before = len(day.sleep)
            for key, is_short in (("data", False), ("shortData", True)):
                for entry in levels.get(key, []):
                    begin = start_utc + (datetime.fromisoformat(entry["dateTime"]) - start_naive)
                    end = begin + timedelta(seconds=int(entry["seconds"]))
                    day.add_stage(log_id, str(entry["level"]), begin, end, is_short=is_short, is_main_sleep=main)
            info = log.get("infoCode")
            asleep = log.get("minutesAsleep")
            day.add_session(log_id, start_utc, end_utc, is_main_sleep=main, sleep_type=log.get("type"),
                            stage_rows=len(day.sleep) - before, pending=pending,
                            info_code=None if info is None else int(info),
                            minutes_asleep=None if asleep is None else int(asleep))
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(
                f"{SOURCE} payload sleep: a sleep log does not have the documented v1.2 shape "
                f"({exc.__class__.__name__}: {exc})"
            ) from None
    if pending:
        day.notes.append("sleep is pending at Fitbit (levels not computed yet): re-run this day later")


def _nights(document: Any, key: str) -> list[dict[str, Any]]:
    """By-date answers are objects, by-range answers lists (sometimes wrapped in ``{key: [...]}``)."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get(key), list):
        return document[key]
    return [document] if isinstance(document, dict) and document else []


def parse_night_samples(day: ParsedDay, name: str, document: Any) -> None:
    """SpO2 / HRV minutes of the nights in a date-range answer; each sample lands on the civil
    day it was taken on (``add_series`` drops those outside this participant-day)."""
    metric, value_of = _NIGHT_SAMPLES[name]
    for night in _nights(document, name):
        minutes = night.get("minutes", [])
        try:
            stamps = _stamps_in_order([m["minute"] for m in minutes], day.window.tz)
            day.add_series(metric, [(ts, value_of(m["value"]), None, None) for ts, m in zip(stamps, minutes)])
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"{SOURCE} payload {name}: bad minute entry ({exc.__class__.__name__}: {exc})") from None


_NIGHT_SAMPLES: dict[str, tuple[str, Any]] = {
    "spo2": ("spo2", float),
    "hrv": ("hrv_rmssd", lambda value: float(value["rmssd"])),
}


def parse_breathing(day: ParsedDay, document: Any) -> None:
    """One value per night, stamped at the start of the wake date's participant-day."""
    for night in _nights(document, "br"):
        if night.get("dateTime") != day.window.day.isoformat():
            continue
        rate = ((night.get("value") or {}).get("fullSleepSummary") or {}).get("breathingRate")
        if rate is None or float(rate) < 0:  # -1 means "no value"
            day.dropped["breathing_rate:no_value"] += 1
            continue
        day.add("breathing_rate", day.window.start, float(rate), None, None)


def parse_devices(day: ParsedDay, document: Any) -> None:
    syncs = [localize(datetime.fromisoformat(d["lastSyncTime"]), day.window.tz)
             for d in (document if isinstance(document, list) else []) if d.get("lastSyncTime")]
    if syncs:
        day.last_device_sync = max(syncs)


def parse_profile(day: ParsedDay, document: Any) -> None:
    """Only a consistency check: the roster's zone is the one we convert with."""
    zone = ((document or {}).get("user") or {}).get("timezone")
    if zone and zone != day.window.tz.key:
        day.notes.append(f"Fitbit profile time zone {zone} differs from the roster's {day.window.tz.key}")


def parse_payload(day: ParsedDay, payload: Payload) -> None:
    """One landed payload (named as in ``legacy.day_paths``) into ``day``."""
    name = payload.name
    if name in _METRIC_OF and _parse_intraday_columnar(day, name, payload.body):
        return
    document = payload.document
    if name in _METRIC_OF:
        parse_intraday(day, name, document)
    elif name == "sleep":
        parse_sleep(day, document)
    elif name in _NIGHT_SAMPLES:
        parse_night_samples(day, name, document)
    elif name == "br":
        parse_breathing(day, document)
    elif name == "devices":
        parse_devices(day, document)
    elif name == "profile":
        parse_profile(day, document)
    else:
        raise PayloadError(f"{SOURCE} payload {name}: no parser for it")
