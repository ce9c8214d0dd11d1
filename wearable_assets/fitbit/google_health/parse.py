"""Google Health v4 payloads -> canonical rows.

Each landed payload is named ``<data-type>.<method>.pNNN`` (see ``google_health.DAY_REQUESTS``);
the data type picks the mapping below. What the mapping has to know about the API:

* int64 values arrive as JSON **strings** (``"beatsPerMinute": "72"``); doubles as numbers;
* every point carries its own physical time (UTC) and ``utcOffset`` (``"-18000s"``), which we
  keep as ``utc_offset_min``; samples use ``sampleTime``, intervals ``interval.startTime``;
* distance is in millimetres (canonical: metres);
* ``dataSource`` (platform + device) is kept as provenance in ``device``;
* sleep arrives as sessions with explicit stage intervals and belongs to the participant-day
  in which it ends (wake);
* the provider's totals of the participant-day (``<type>.rollUpDay``: one rollUp window over the
  day's interval) are a cross-check, not rows; payloads landed before that request existed hold
  ``dailyRollUp`` totals of the device's civil day instead and are read the same way.

Point lists are the hot path of a load (a 1-s heart-rate day is 86,400 points, ~46 MB of JSON):
``columnar.parse_points`` reads the int64-valued ones straight from the bytes with Arrow, and only
when a payload is not exactly the expected shape does the per-point code below run, which
either handles the unusual case or raises the ``PayloadError`` naming the point.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from wearable_assets.fitbit.canonical import ParsedDay, Payload, Sample, parse_duration_s, parse_rfc3339
from wearable_assets.fitbit.google_health import columnar

SOURCE = "google_health"
UTC = timezone.utc


class PayloadError(ValueError):
    """A payload that is valid JSON but not the documented shape (names payload and point)."""


def _camel(data_type: str) -> str:
    head, *rest = data_type.split("-")
    return head + "".join(part.title() for part in rest)


def _number(value: Any) -> float:
    """int64-as-string or a JSON number -> float (``True`` is not a number here)."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


#: data type -> (canonical metric, time field: "sampleTime" | "interval", value path, scale).
#: ``floors`` is read with rollUp now (the service refuses ``list`` for it); its mapping stays for
#: ``floors.list`` payloads landed before, so those days still load.
POINT_MAPPINGS: dict[str, tuple[str, str, tuple[str, ...], float]] = {
    "heart-rate": ("heart_rate", "sampleTime", ("beatsPerMinute",), 1.0),
    "steps": ("steps", "interval", ("count",), 1.0),
    "distance": ("distance", "interval", ("millimeters",), 0.001),
    "floors": ("floors", "interval", ("count",), 1.0),
    "active-zone-minutes": ("active_zone_minutes", "interval", ("activeZoneMinutes",), 1.0),
    "oxygen-saturation": ("spo2", "sampleTime", ("percentage",), 1.0),
    "heart-rate-variability": ("hrv_rmssd", "sampleTime", ("rootMeanSquareOfSuccessiveDifferencesMilliseconds",), 1.0),
    "respiratory-rate-sleep-summary": ("breathing_rate", "sampleTime", ("fullSleepStats", "breathsPerMinute"), 1.0),
}
_TIME_KEYS = {"sampleTime": ("physicalTime", "utcOffset"), "interval": ("startTime", "startUtcOffset")}

# Sleep stage names: STAGES sessions use wake/light/deep/rem, CLASSIC ones asleep/restless/awake
# (the same vocabulary as the legacy API's levels, so both adapters agree).
_STAGE_NAMES = {
    ("STAGES", "AWAKE"): "wake", ("STAGES", "LIGHT"): "light", ("STAGES", "DEEP"): "deep", ("STAGES", "REM"): "rem",
    ("CLASSIC", "AWAKE"): "awake", ("CLASSIC", "RESTLESS"): "restless", ("CLASSIC", "ASLEEP"): "asleep",
}

# Day-total rollUp (and older dailyRollUp) value fields -> the name kept in daily_totals
# (a cross-check, not stored as rows)
_ROLLUP_FIELDS = {
    "steps": ("steps", "countSum", 1.0),
    "distance": ("distance_m", "millimetersSum", 0.001),
    "floors": ("floors", "countSum", 1.0),
    "total-calories": ("calories", "kcalSum", 1.0),
}
# rollUp (60 s physical windows) -> per-minute rows
_MINUTE_ROLLUPS = {"floors": ("floors", "countSum", 1.0), "total-calories": ("calories", "kcalSum", 1.0)}


def parse_points(day: ParsedDay, data_type: str, document: dict[str, Any], name: str) -> None:
    metric, time_field, path, scale = POINT_MAPPINGS[data_type]
    time_key, offset_key = _TIME_KEYS[time_field]
    union = _camel(data_type)
    points = document.get("dataPoints", [])
    if not isinstance(points, list):
        raise PayloadError(f"{SOURCE} payload {name}: 'dataPoints' is not a list")
    offsets: dict[str, int] = {}
    devices: dict[tuple[Any, Any], str | None] = {}

    def samples() -> Iterator[Sample]:
        for index, point in enumerate(points):
            try:
                body = point[union]
                when = body[time_field]
                ts = datetime.fromisoformat(when[time_key])
                if ts.tzinfo is not UTC:
                    ts = parse_rfc3339(when[time_key])
                offset_text = when.get(offset_key)
                offset = offsets.get(offset_text)
                if offset is None and offset_text is not None:
                    offset = offsets[offset_text] = parse_duration_s(offset_text) // 60  # type: ignore[operator]
                value = body
                for key in path:
                    value = value[key]
                value = _number(value) * scale
            except (KeyError, TypeError, ValueError) as exc:
                raise PayloadError(
                    f"{SOURCE} payload {name}: data point {index} does not have the documented {union!r} shape "
                    f"({exc.__class__.__name__}: {exc})"
                ) from None
            source = point.get("dataSource")
            device = None
            if source:
                device_key = (source.get("platform"), (source.get("device") or {}).get("displayName"))
                if device_key not in devices:
                    devices[device_key] = ":".join(p for p in device_key if p) or None
                device = devices[device_key]
            yield ts, value, offset, device

    day.add_series(metric, samples())


def parse_resting_hr(day: ParsedDay, document: dict[str, Any], name: str) -> None:
    """Daily types carry a civil ``date``; the value is stamped at the start of the participant-day."""
    wanted = (day.window.day.year, day.window.day.month, day.window.day.day)
    for index, point in enumerate(document.get("dataPoints", [])):
        try:
            body = point["dailyRestingHeartRate"]
            when = body["date"]
            value = _number(body["beatsPerMinute"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"{SOURCE} payload {name}: data point {index}: {exc.__class__.__name__}: {exc}") from None
        if (when.get("year"), when.get("month"), when.get("day")) != wanted:
            day.dropped["resting_heart_rate:other_day"] += 1
            continue
        day.add("resting_heart_rate", day.window.start, value, None, None)


def parse_sleep(day: ParsedDay, document: dict[str, Any], name: str) -> None:
    """Sessions of the wake date: their stages, and the session itself whether or not it has
    stages (``metadata.processed = false``: not computed yet; ``stagesStatus``: why not)."""
    for index, point in enumerate(document.get("dataPoints", [])):
        try:
            session = point["sleep"]
            kind = session.get("type", "STAGES")
            log_id = str(point.get("name") or point.get("dataPointName") or session["interval"]["startTime"])
            log_id = log_id.rsplit("/", 1)[-1]
            start = parse_rfc3339(session["interval"]["startTime"])
            end = parse_rfc3339(session["interval"]["endTime"])
            metadata = session.get("metadata") or {}
            main = metadata.get("mainSleep")
            asleep = (session.get("summary") or {}).get("minutesAsleep")
            minutes_asleep = None if asleep is None else int(_number(asleep))
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
        pending = not metadata.get("processed", True)
        if pending:
            day.notes.append(f"sleep {log_id} is not processed yet (stages pending): re-run this day later")
        before = len(day.sleep)
        for stage, start_ts, end_ts, short in stages:
            day.add_stage(log_id, stage, start_ts, end_ts, is_short=short, is_main_sleep=main)
        day.add_session(log_id, start, end, is_main_sleep=main, sleep_type=kind, stage_rows=len(day.sleep) - before,
                        pending=pending, stages_status=metadata.get("stagesStatus"), minutes_asleep=minutes_asleep)


def parse_rollup(day: ParsedDay, data_type: str, document: dict[str, Any], name: str) -> None:
    label, field, scale = _ROLLUP_FIELDS[data_type]
    union = _camel(data_type)
    for item in document.get("rollupDataPoints", []):
        body = item.get(union) if isinstance(item, dict) else None
        if isinstance(body, dict) and body.get(field) is not None:
            day.daily_totals[label] = day.daily_totals.get(label, 0.0) + _number(body[field]) * scale


def parse_minute_rollup(day: ParsedDay, data_type: str, document: dict[str, Any], name: str) -> None:
    """Physical-time rollUp windows (60 s): one row per minute, stamped at the window start."""
    metric, field, scale = _MINUTE_ROLLUPS[data_type]
    union = _camel(data_type)
    samples: list[Sample] = []
    for index, item in enumerate(document.get("rollupDataPoints", [])):
        try:
            ts = parse_rfc3339(item["startTime"])
            value = _number(item[union][field]) * scale
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"{SOURCE} payload {name}: rollup window {index}: {exc.__class__.__name__}: {exc}") from None
        samples.append((ts, value, None, None))
    day.add_series(metric, samples)  # once per payload: adding is column-wise, costly per call


def parse_devices(day: ParsedDay, document: dict[str, Any]) -> None:
    syncs = [parse_rfc3339(d["lastSyncTime"]) for d in document.get("pairedDevices", []) if d.get("lastSyncTime")]
    if syncs:
        day.last_device_sync = max(syncs)


def _kind(name: str) -> tuple[str, str, str]:
    """(kind of parser, data type, method) a payload name routes to."""
    if name == "pairedDevices":
        return "devices", "", ""
    data_type, method, _page = name.rsplit(".", 2)
    if method in ("rollUpDay", "dailyRollUp") and data_type in _ROLLUP_FIELDS:
        return "rollup", data_type, method
    if method == "rollUp" and data_type in _MINUTE_ROLLUPS:
        return "minute_rollup", data_type, method
    if data_type in ("sleep", "daily-resting-heart-rate"):
        return data_type, data_type, method
    if data_type in POINT_MAPPINGS:
        return "points", data_type, method
    return "unknown", data_type, method


def _parse_columnar(day: ParsedDay, data_type: str, body: bytes) -> bool:
    """The fast path for int64-valued point lists; False if the payload needs the per-point path."""
    metric, time_field, path, scale = POINT_MAPPINGS[data_type]
    columns = columnar.parse_points(body, _camel(data_type), time_field, _TIME_KEYS[time_field], path)
    if columns is None:
        return False
    ts, values, offsets, device, devices = columns
    day.add_columns(metric, ts, values * scale, offsets, device, devices)
    return True


def parse_payload(day: ParsedDay, payload: Payload) -> None:
    """One landed payload into ``day``. Payload order matters only for duplicates (the first
    source seen wins), and the manifest fixes that order."""
    name = payload.name
    kind, data_type, method = _kind(name)
    if kind == "points" and data_type in columnar.INT64_VALUED and _parse_columnar(day, data_type, payload.body):
        return
    document = payload.document
    if not isinstance(document, dict):
        raise PayloadError(f"{SOURCE} payload {name}: expected a JSON object, got {type(document).__name__}")
    if kind == "devices":
        parse_devices(day, document)
    elif kind == "rollup":
        parse_rollup(day, data_type, document, name)
    elif kind == "minute_rollup":
        parse_minute_rollup(day, data_type, document, name)
    elif kind == "sleep":
        parse_sleep(day, document, name)
    elif kind == "daily-resting-heart-rate":
        parse_resting_hr(day, document, name)
    elif kind == "points":
        parse_points(day, data_type, document, name)
    else:
        raise PayloadError(f"{SOURCE} payload {name}: no parser for data type {data_type!r} ({method})")
