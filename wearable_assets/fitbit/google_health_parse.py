"""Google Health v4 payloads -> canonical rows.

Each landed payload is named ``<data-type>.<method>.pNNN`` (see ``google_health.DAY_REQUESTS``);
the data type picks the mapping below. What the mapping has to know about the API:

* int64 values arrive as JSON **strings** (``"beatsPerMinute": "72"``); doubles as numbers;
* every point carries its own physical time (UTC) and ``utcOffset`` (``"-18000s"``), which we
  keep as ``utc_offset_min``; samples use ``sampleTime``, intervals ``interval.startTime``;
* distance is in millimetres (canonical: metres);
* ``dataSource`` (platform + device) is kept as provenance in ``device``;
* sleep arrives as sessions with explicit stage intervals and belongs to the wake date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from wearable_assets.fitbit.canonical import DayWindow, ParsedDay, parse_duration_s, parse_rfc3339

SOURCE = "google_health"


class PayloadError(ValueError):
    """A payload that is valid JSON but not the documented shape (names payload and point)."""


def _camel(data_type: str) -> str:
    head, *rest = data_type.split("-")
    return head + "".join(part.title() for part in rest)


def _number(value: Any) -> float:
    """int64-as-string or a JSON number -> float."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _device(point: dict[str, Any]) -> str | None:
    source = point.get("dataSource") or {}
    device = (source.get("device") or {}).get("displayName")
    platform = source.get("platform")
    parts = [p for p in (platform, device) if p]
    return ":".join(parts) if parts else None


def _sample_time(body: dict[str, Any]) -> tuple[datetime, int | None]:
    sample = body["sampleTime"]
    offset = parse_duration_s(sample.get("utcOffset"))
    return parse_rfc3339(sample["physicalTime"]), None if offset is None else offset // 60


def _interval_start(body: dict[str, Any]) -> tuple[datetime, int | None]:
    interval = body["interval"]
    offset = parse_duration_s(interval.get("startUtcOffset"))
    return parse_rfc3339(interval["startTime"]), None if offset is None else offset // 60


# data type -> (canonical metric, how to read the time, how to read the value)
TimeOf = Callable[[dict[str, Any]], tuple[datetime, int | None]]
ValueOf = Callable[[dict[str, Any]], float | None]
POINT_MAPPINGS: dict[str, tuple[str, TimeOf, ValueOf]] = {
    "heart-rate": ("heart_rate", _sample_time, lambda b: _number(b["beatsPerMinute"])),
    "steps": ("steps", _interval_start, lambda b: _number(b["count"])),
    "distance": ("distance", _interval_start, lambda b: _number(b["millimeters"]) / 1000.0),
    "floors": ("floors", _interval_start, lambda b: _number(b["count"])),
    "active-zone-minutes": ("active_zone_minutes", _interval_start, lambda b: _number(b["activeZoneMinutes"])),
    "oxygen-saturation": ("spo2", _sample_time, lambda b: _number(b["percentage"])),
    "heart-rate-variability": (
        "hrv_rmssd", _sample_time, lambda b: _number(b["rootMeanSquareOfSuccessiveDifferencesMilliseconds"])),
    "respiratory-rate-sleep-summary": (
        "breathing_rate", _sample_time, lambda b: _number(b["fullSleepStats"]["breathsPerMinute"])),
}

# Sleep stage names: STAGES sessions use wake/light/deep/rem, CLASSIC ones asleep/restless/awake
# (the same vocabulary as the legacy API's levels, so both adapters agree).
_STAGE_NAMES = {
    ("STAGES", "AWAKE"): "wake", ("STAGES", "LIGHT"): "light", ("STAGES", "DEEP"): "deep", ("STAGES", "REM"): "rem",
    ("CLASSIC", "AWAKE"): "awake", ("CLASSIC", "RESTLESS"): "restless", ("CLASSIC", "ASLEEP"): "asleep",
}

# dailyRollUp value fields -> the name kept in daily_totals (a cross-check, not stored as rows)
_ROLLUP_FIELDS = {
    "steps": ("steps", "countSum", 1.0),
    "distance": ("distance_m", "millimetersSum", 0.001),
    "floors": ("floors", "countSum", 1.0),
    "total-calories": ("calories", "kcalSum", 1.0),
}


def parse_points(day: ParsedDay, data_type: str, document: dict[str, Any], name: str) -> None:
    metric, time_of, value_of = POINT_MAPPINGS[data_type]
    union = _camel(data_type)
    points = document.get("dataPoints", [])
    if not isinstance(points, list):
        raise PayloadError(f"{SOURCE} payload {name}: 'dataPoints' is not a list")
    for index, point in enumerate(points):
        try:
            body = point[union]
            ts, offset = time_of(body)
            value = value_of(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(
                f"{SOURCE} payload {name}: data point {index} does not have the documented {union!r} shape "
                f"({exc.__class__.__name__}: {exc})"
            ) from None
        day.add(metric, ts, value, offset, _device(point))


def parse_resting_hr(day: ParsedDay, document: dict[str, Any], name: str) -> None:
    """Daily types carry a civil ``date``; the value is stamped at the start of the participant-day."""
    for index, point in enumerate(document.get("dataPoints", [])):
        try:
            body = point["dailyRestingHeartRate"]
            when = body["date"]
            value = _number(body["beatsPerMinute"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"{SOURCE} payload {name}: data point {index}: {exc.__class__.__name__}: {exc}") from None
        if (when.get("year"), when.get("month"), when.get("day")) != (day.window.day.year, day.window.day.month,
                                                                      day.window.day.day):
            day.dropped["resting_heart_rate:other_day"] += 1
            continue
        day.add("resting_heart_rate", day.window.start, value, None, _device(point))


def parse_sleep(day: ParsedDay, document: dict[str, Any], name: str) -> None:
    for index, point in enumerate(document.get("dataPoints", [])):
        try:
            session = point["sleep"]
            kind = session.get("type", "STAGES")
            log_id = str(point.get("name") or point.get("dataPointName") or session["interval"]["startTime"])
            log_id = log_id.rsplit("/", 1)[-1]
            end = parse_rfc3339(session["interval"]["endTime"])
            main = (session.get("metadata") or {}).get("mainSleep")
            # ``shortAwakenings`` overlap the stages (like the legacy API's shortData): kept, flagged.
            stages = [
                (_STAGE_NAMES[(kind, s["type"])], parse_rfc3339(s["startTime"]), parse_rfc3339(s["endTime"]), short)
                for key, short in (("stages", False), ("shortAwakenings", True))
                for s in session.get(key, [])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(
                f"{SOURCE} payload {name}: sleep session {index} does not have the documented shape "
                f"({exc.__class__.__name__}: {exc})"
            ) from None
        if not day.window.contains(end):
            day.dropped["sleep:ends_on_other_day"] += 1
            continue
        if not (session.get("metadata") or {}).get("processed", True):
            day.notes.append(f"sleep {log_id} is not processed yet (stages pending): re-run this day later")
        for stage, start_ts, end_ts, short in stages:
            day.add_stage(log_id, stage, start_ts, end_ts, is_short=short, is_main_sleep=main)


def parse_rollup(day: ParsedDay, data_type: str, document: dict[str, Any], name: str) -> None:
    label, field, scale = _ROLLUP_FIELDS[data_type]
    union = _camel(data_type)
    items = next((v for v in document.values() if isinstance(v, list)), [])
    for item in items:
        body = item.get(union) if isinstance(item, dict) else None
        if isinstance(body, dict) and body.get(field) is not None:
            day.daily_totals[label] = day.daily_totals.get(label, 0.0) + _number(body[field]) * scale


def parse_minute_rollup(day: ParsedDay, data_type: str, document: dict[str, Any], name: str) -> None:
    """Physical-time rollUp windows (60 s): one row per minute, stamped at the window start."""
    metric, field, scale = {"total-calories": ("calories", "kcalSum", 1.0)}[data_type]
    union = _camel(data_type)
    for index, item in enumerate(document.get("rollupDataPoints", [])):
        try:
            ts = parse_rfc3339(item["startTime"])
            value = _number(item[union][field]) * scale
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"{SOURCE} payload {name}: rollup window {index}: {exc.__class__.__name__}: {exc}") from None
        day.add(metric, ts, value, None, None)


def parse_devices(day: ParsedDay, document: dict[str, Any]) -> None:
    syncs = [parse_rfc3339(d["lastSyncTime"]) for d in document.get("pairedDevices", []) if d.get("lastSyncTime")]
    if syncs:
        day.last_device_sync = max(syncs)


def parse_day(window: DayWindow, participant_id: str, payloads: Iterable[tuple[str, dict[str, Any]]]) -> ParsedDay:
    """All landed payloads of one participant-day -> a ``ParsedDay``. Payload order matters
    only for duplicates (the first source seen wins), and the manifest fixes that order."""
    day = ParsedDay(window=window, participant_id=participant_id, source=SOURCE)
    for name, document in payloads:
        if name == "pairedDevices":
            parse_devices(day, document)
            continue
        data_type, method, _page = name.rsplit(".", 2)
        if method == "dailyRollUp":
            parse_rollup(day, data_type, document, name)
        elif method == "rollUp":
            parse_minute_rollup(day, data_type, document, name)
        elif data_type == "sleep":
            parse_sleep(day, document, name)
        elif data_type == "daily-resting-heart-rate":
            parse_resting_hr(day, document, name)
        elif data_type in POINT_MAPPINGS:
            parse_points(day, data_type, document, name)
        else:
            raise PayloadError(f"{SOURCE} payload {name}: no parser for data type {data_type!r}")
    return day
