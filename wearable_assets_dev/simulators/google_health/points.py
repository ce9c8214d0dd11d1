"""Point generation: every point of a data type that a user's synced days hold, as columns.

``build_points`` turns the cohort's days into a ``PointSet``: the keys the filters and the page
order need (physical, civil, date, order) plus a renderer of any selection of those points, so a
query filters and pages with numpy and renders only the page it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import orjson

from wearable_assets_dev.simulators.cohort import (
    OffsetTable,
    SimDay,
    SimUser,
    SleepSession,
    concatenate,
    device_offsets,
    to_epoch,
)
from wearable_assets_dev.simulators.google_health.rendering import (
    EPOCH_ORDINAL,
    TEXT,
    VALUE,
    civil_texts,
    data_source,
    date_json,
    duration,
    fill,
    interval_json,
    point_format,
    rfc3339,
    rfc3339_text,
    sample_time,
)
from wearable_assets_dev.simulators.google_health.vocabulary import (
    HR_ZONE_NAMES,
    SLEEP_PROCESSING,
    STAGE_TYPES,
    DataType,
    invalid,
)


@dataclass
class PointSet:
    """Columnar points of one type: keys for filtering and ordering plus a renderer."""

    order: np.ndarray  # unique sort key (interval/sample start), epoch seconds
    physical: np.ndarray  # the member physical filters compare (sample time, start, or sleep end)
    civil: np.ndarray  # the same instant as naive local time
    dates: np.ndarray  # date ordinal (daily types)
    render: Callable[[np.ndarray, bool], bytes]  # (indices, reconciled) -> the JSON array of those points


def one_by_one(render: Callable[[int, bool], dict[str, Any]]) -> Callable[[np.ndarray, bool], bytes]:
    """Adapt a per-point renderer (few points: sleep, night samples, daily values) to
    ``PointSet.render``."""
    return lambda indices, reconciled: orjson.dumps([render(int(i), reconciled) for i in indices])


def _empty_points() -> PointSet:
    z = np.zeros(0, dtype=np.int64)
    return PointSet(z, z, z, z, lambda indices, r: b"[]")


#: ``motionContext`` of a heart-rate sample, by "in a minute of moderate or vigorous activity".
MOTION = np.array(["SEDENTARY", "ACTIVE"], dtype=object)
#: ``heartRateZone`` by ``hr_zone`` (an active-zone minute is never in zone 0).
ZONE_NAMES = np.array([None] + [HR_ZONE_NAMES[z] for z in (1, 2, 3)], dtype=object)


def build_points(dtype: DataType, user: SimUser, days: list[SimDay], lo: int, hi: int) -> PointSet:
    """Every point of ``dtype`` that the synced ``days`` hold within ``[lo, hi)`` (UTC)."""
    if not days:
        return _empty_points()
    offsets = device_offsets(user, to_epoch(days[0].start) - 86400, to_epoch(days[-1].end) + 86400)
    source = data_source(user)
    derived = data_source(user, "DERIVED")
    key = dtype.camel

    def wrap(payload: dict[str, Any], reconciled: bool, src: dict[str, Any] = source, name: str | None = None):
        if reconciled:
            out: dict[str, Any] = {"dataPointName": name} if name else {}
            out[key] = payload
            return out
        out = {"name": name} if name else {}
        out["dataSource"] = src
        out[key] = payload
        return out

    if dtype.record == "daily":
        rows = [d for d in days if d.resting_hr is not None]
        order = np.array([to_epoch(d.start) for d in rows], dtype=np.int64)
        # The value's civil ``date`` is "in the user's timezone": the device's, at the middle of
        # the recorded day (the home date unless travel moved the device's clock a day away).
        middle = (order + np.array([to_epoch(d.end) for d in rows], dtype=np.int64)) // 2
        ords = (middle + offsets.at(middle)) // 86400 + EPOCH_ORDINAL if rows else order

        def render_daily(i: int, reconciled: bool) -> dict[str, Any]:
            d = rows[i]
            payload: dict[str, Any] = {"date": date_json(date.fromordinal(int(ords[i])))}
            if dtype.path == "daily-resting-heart-rate":
                payload["beatsPerMinute"] = str(d.resting_hr)
                payload["dailyRestingHeartRateMetadata"] = {"calculationMethod": "WITH_SLEEP"}
            elif dtype.path == "daily-oxygen-saturation":
                values = np.array([s.percent for s in d.spo2]) if d.spo2 else np.array([0.0])
                payload.update(
                    averagePercentage=round(float(values.mean()), 1),
                    lowerBoundPercentage=round(float(np.percentile(values, 5)), 1),
                    upperBoundPercentage=round(float(np.percentile(values, 95)), 1),
                    standardDeviationPercentage=round(float(values.std()), 2),
                )
            elif dtype.path == "daily-heart-rate-variability":
                rmssd = np.array([w.rmssd for w in d.hrv]) if d.hrv else np.array([0.0])
                payload.update(
                    averageHeartRateVariabilityMilliseconds=round(float(rmssd.mean()), 3),
                    deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds=round(float(rmssd.max()), 3),
                    nonRemHeartRateBeatsPerMinute=str(int(d.resting_hr or 60) - 2),
                    entropy=round(2.5 + float(rmssd.std()) / 20, 3),
                )
            elif dtype.path == "daily-respiratory-rate":
                payload["breathsPerMinute"] = d.breathing.full if d.breathing else 0.0
            return wrap(payload, reconciled, derived)

        return PointSet(order, order, order, ords, one_by_one(render_daily))

    if dtype.record == "session" or dtype.path in ("oxygen-saturation", "heart-rate-variability",
                                                   "respiratory-rate-sleep-summary"):
        return _night_points(dtype, user, days, offsets, wrap)

    conc = concatenate(days, lo, hi)
    if dtype.path == "heart-rate":
        t = conc.hr_times
        off = offsets.at(t)
        minute = np.clip(np.searchsorted(conc.minute_starts, t, side="right") - 1, 0, None)
        active = conc.intensity[minute] >= 2 if t.size else np.zeros(0, dtype=bool)
        bpm = conc.hr_bpm
        hr_format = {
            r: point_format(wrap({
                "beatsPerMinute": TEXT,
                "sampleTime": {"physicalTime": TEXT + "Z", "utcOffset": TEXT + "s",
                               "civilTime": {"date": VALUE, "time": VALUE}},
                "metadata": {"motionContext": TEXT, "sensorLocation": "WRIST"},
            }, r))
            for r in (False, True)
        }

        def render_hr(sel: np.ndarray, reconciled: bool) -> bytes:
            ts, o = t[sel], off[sel]
            dates, clocks = civil_texts(ts + o)
            return fill(hr_format[reconciled], bpm[sel].tolist(), rfc3339_text(ts), o.tolist(), dates, clocks,
                        MOTION[active[sel].astype(np.intp)].tolist())

        return PointSet(t, t, t + off, np.zeros(t.size, dtype=np.int64), render_hr)

    # Per-minute interval types: only minutes the device was worn (true zeros included).
    keep = conc.worn.copy()
    if dtype.path == "active-zone-minutes":
        keep &= conc.azm > 0
    bmr = user.bmr_kcal_per_min
    active_kcal = np.clip(conc.calories - bmr, 0, None)
    if dtype.path == "active-energy-burned":
        keep &= active_kcal > 0
    idx = np.flatnonzero(keep)
    start = conc.minute_starts[idx]
    off_s, off_e = offsets.at(start), offsets.at(start + 60)

    # The value fields of a minute (template slots) and their values for minutes ``j`` of ``conc``.
    values: dict[str, tuple[dict[str, str], Callable[[np.ndarray], list[list[Any]]]]] = {
        "steps": ({"count": TEXT}, lambda j: [conc.steps[j].tolist()]),
        "distance": ({"millimeters": TEXT},
                     lambda j: [np.round(conc.distance_m[j] * 1000).astype(np.int64).tolist()]),
        "active-energy-burned": ({"kcal": VALUE}, lambda j: [[round(v, 4) for v in active_kcal[j].tolist()]]),
        "active-zone-minutes": ({"activeZoneMinutes": TEXT, "heartRateZone": TEXT},
                                lambda j: [conc.azm[j].tolist(), ZONE_NAMES[conc.hr_zone[j]].tolist()]),
    }
    if dtype.path not in values:
        raise invalid(f"list is not supported for data type {dtype.path}")
    fields, columns = values[dtype.path]
    minute_format = {
        r: point_format(wrap({
            **fields,
            "interval": {"startTime": TEXT + "Z", "startUtcOffset": TEXT + "s",
                         "endTime": TEXT + "Z", "endUtcOffset": TEXT + "s",
                         "civilStartTime": {"date": VALUE, "time": VALUE},
                         "civilEndTime": {"date": VALUE, "time": VALUE}},
        }, r))
        for r in (False, True)
    }

    def render_minute(sel: np.ndarray, reconciled: bool) -> bytes:
        a, oa, ob = start[sel], off_s[sel], off_e[sel]
        start_dates, start_clocks = civil_texts(a + oa)
        end_dates, end_clocks = civil_texts(a + 60 + ob)
        return fill(minute_format[reconciled], *columns(idx[sel]), rfc3339_text(a), oa.tolist(),
                    rfc3339_text(a + 60), ob.tolist(), start_dates, start_clocks, end_dates, end_clocks)

    return PointSet(start, start, start + off_s, np.zeros(start.size, dtype=np.int64), render_minute)


def _night_points(dtype: DataType, user: SimUser, days: list[SimDay], offsets: OffsetTable, wrap) -> PointSet:
    """Sleep sessions and the per-night samples (SpO2, HRV, respiratory summary)."""
    if dtype.path in ("oxygen-saturation", "heart-rate-variability"):
        return _night_samples(dtype, days, offsets, wrap)
    entries: list[tuple[int, int, Callable[[bool], dict[str, Any]]]] = []  # (order, physical, render)
    for d in days:
        if dtype.path == "sleep":
            for nap in d.naps:
                entries.append((to_epoch(nap.start), to_epoch(nap.end), _nap_renderer(user, nap, offsets, wrap)))
        s = d.sleep
        if s is None:
            continue
        s0, s1 = to_epoch(s.start), to_epoch(s.end)
        if dtype.path == "sleep":
            processed = d.synced_until is None or d.synced_until >= s.end + SLEEP_PROCESSING
            entries.append((s0, s1, _sleep_renderer(user, d, offsets, processed, wrap)))
        elif dtype.path == "respiratory-rate-sleep-summary" and d.breathing is not None:
            b = d.breathing

            def render_br(r: bool, t: int = s1, b=b) -> dict[str, Any]:
                payload: dict[str, Any] = {"sampleTime": sample_time(t, int(offsets.at(t)))}
                for name, v in (("full", b.full), ("deep", b.deep), ("light", b.light), ("rem", b.rem)):
                    if v is not None:
                        payload[f"{name}SleepStats"] = {"breathsPerMinute": v, "standardDeviation": 0.6,
                                                         "signalToNoise": 4.2}
                return wrap(payload, r, data_source(user, "DERIVED"))

            entries.append((s1, s1, render_br))
    entries.sort(key=lambda e: e[0])
    order = np.array([e[0] for e in entries], dtype=np.int64)
    physical = np.array([e[1] for e in entries], dtype=np.int64)
    civil = physical + offsets.at(physical) if physical.size else physical
    renders = [e[2] for e in entries]
    return PointSet(order, physical, civil, np.zeros(order.size, dtype=np.int64),
                    one_by_one(lambda i, r: renders[i](r)))


def _night_samples(dtype: DataType, days: list[SimDay], offsets: OffsetTable, wrap) -> PointSet:
    """SpO2 samples or HRV windows of the synced nights, in time order."""
    spo2 = dtype.path == "oxygen-saturation"
    samples: list[Any] = [x for d in days if d.sleep is not None for x in (d.spo2 if spo2 else d.hrv)]
    t = np.array([to_epoch(x.at if spo2 else x.start) for x in samples], dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    samples = [samples[i] for i in order.tolist()]
    off = offsets.at(t)

    def render(i: int, reconciled: bool) -> dict[str, Any]:
        x, when = samples[i], sample_time(int(t[i]), int(off[i]))
        if spo2:
            return wrap({"percentage": x.percent, "sampleTime": when}, reconciled)
        return wrap({
            "rootMeanSquareOfSuccessiveDifferencesMilliseconds": x.rmssd,
            "standardDeviationMilliseconds": x.sdnn,
            "sampleTime": when,
            "metadata": {"highFrequencyPower": x.hf, "lowFrequencyPower": x.lf},
        }, reconciled)

    return PointSet(t, t, t + off, np.zeros(t.size, dtype=np.int64), one_by_one(render))


def _nap_renderer(user: SimUser, nap: SleepSession, offsets: OffsetTable, wrap):
    """A nap too short to stage: processed, ``stagesStatus: REJECTED_NAP`` (sleep under 3 h)
    and no ``stages``; ``type`` CLASSIC, the type Fitbit gives sleep it does not stage."""
    n0, n1 = to_epoch(nap.start), to_epoch(nap.end)
    minutes = nap.time_in_bed

    def render(reconciled: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "interval": interval_json(n0, n1, int(offsets.at(n0)), int(offsets.at(n1))),
            "type": "CLASSIC",
            "metadata": {"mainSleep": False, "nap": True, "processed": True, "manuallyEdited": False,
                         "stagesStatus": "REJECTED_NAP"},
            "summary": {"minutesInSleepPeriod": str(minutes), "minutesAsleep": str(max(minutes - 6, 0)),
                        "minutesAwake": str(min(minutes, 6)), "minutesToFallAsleep": "0",
                        "minutesAfterWakeUp": "0"},
            "createTime": rfc3339(n1 + 300),
            "updateTime": rfc3339(n1 + 1800),
        }
        name = f"users/{user.health_user_id}/dataTypes/sleep/dataPoints/{nap.log_id}"
        return wrap(payload, reconciled, data_source(user, "DERIVED"), name)

    return render


def _sleep_renderer(user: SimUser, d: SimDay, offsets: OffsetTable, processed: bool, wrap):
    s = d.sleep
    assert s is not None
    s0, s1 = to_epoch(s.start), to_epoch(s.end)

    def seg(stage) -> dict[str, Any]:
        a, b = to_epoch(stage.start), to_epoch(stage.end)
        return {"type": STAGE_TYPES[stage.level], "startTime": rfc3339(a), "startUtcOffset": duration(int(offsets.at(a))),
                "endTime": rfc3339(b), "endUtcOffset": duration(int(offsets.at(b)))}

    def render(reconciled: bool) -> dict[str, Any]:
        secs, counts = s.level_seconds(), s.level_counts()
        payload: dict[str, Any] = {
            "interval": interval_json(s0, s1, int(offsets.at(s0)), int(offsets.at(s1))),
            "type": "STAGES",
            "metadata": {"mainSleep": s.is_main, "nap": False, "processed": processed,
                         "manuallyEdited": False},
            "createTime": rfc3339(s1 + 300),
            "updateTime": rfc3339(s1 + (1800 if processed else 300)),
        }
        if processed:
            payload["stages"] = [seg(st) for st in s.stages]
            if s.short_wakes:
                payload["shortAwakenings"] = [seg(st) for st in s.short_wakes]
            payload["metadata"]["stagesStatus"] = "SUCCEEDED"
            payload["summary"] = {
                "minutesInSleepPeriod": str(s.time_in_bed),
                "minutesAsleep": str(s.minutes_asleep),
                "minutesAwake": str(s.minutes_awake),
                "minutesToFallAsleep": "0",
                "minutesAfterWakeUp": "0",
                "stagesSummary": [
                    {"type": STAGE_TYPES[lv], "minutes": str(secs[lv] // 60), "count": str(counts[lv])}
                    for lv in ("wake", "light", "deep", "rem")
                ],
            }
        name = f"users/{user.health_user_id}/dataTypes/sleep/dataPoints/{s.log_id}"
        return wrap(payload, reconciled, data_source(user, "DERIVED"), name)

    return render
