"""Rollups: the value ``:rollUp`` and ``:dailyRollUp`` return for a window of minutes and samples,
the ``dailyRollUp`` range dates and the rollup methods' position-based pages."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import numpy as np

from wearable_assets_dev.simulators.cohort import SimDay
from wearable_assets_dev.simulators.google_health.vocabulary import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, DataType, invalid


def rollup_value(dtype: DataType, conc, m_idx: np.ndarray, h_idx: np.ndarray, days: list[SimDay], bmr: float):
    """The ``*RollupValue`` of ``dtype`` over the given minute / heart-rate sample indices."""
    if dtype.path == "heart-rate":
        if h_idx.size == 0:
            return None
        v = conc.hr_bpm[h_idx].astype(float)
        return {"beatsPerMinuteAvg": round(float(v.mean()), 2), "beatsPerMinuteMin": float(v.min()),
                "beatsPerMinuteMax": float(v.max())}
    if dtype.path == "daily-resting-heart-rate":
        values: list[float] = [d.resting_hr for d in days if d.resting_hr is not None]
        return {"beatsPerMinuteMin": float(min(values)), "beatsPerMinuteMax": float(max(values))} if values else None
    if dtype.path == "daily-heart-rate-variability":
        values = [float(np.mean([w.rmssd for w in d.hrv])) for d in days if d.hrv]
        return ({"averageHeartRateVariabilityMillisecondsMin": round(min(values), 3),
                 "averageHeartRateVariabilityMillisecondsMax": round(max(values), 3)} if values else None)
    worn = m_idx[conc.worn[m_idx]]
    if worn.size == 0:
        return None
    return minute_rollup_value(dtype, [column[worn].sum() for column in minute_columns(dtype, conc, bmr)])


def minute_columns(dtype: DataType, conc, bmr: float) -> list[np.ndarray]:
    """The per-minute columns whose sums over a window's worn minutes make ``dtype``'s rollup value."""
    if dtype.path == "steps":
        return [conc.steps]
    if dtype.path == "distance":
        return [conc.distance_m]
    if dtype.path == "floors":
        return [conc.floors]
    if dtype.path == "total-calories":
        return [conc.calories]
    if dtype.path == "active-energy-burned":
        return [np.clip(conc.calories - bmr, 0, None)]
    if dtype.path == "active-zone-minutes":
        return [np.where(conc.hr_zone == zone, conc.azm, 0) for zone in (1, 2, 3)]
    raise invalid(f"rollups are not supported for data type {dtype.path}")


def minute_rollup_value(dtype: DataType, sums: list[Any]) -> dict[str, Any]:
    """``dtype``'s rollup value from the window sums of its ``minute_columns``."""
    if dtype.path in ("steps", "floors"):
        return {"countSum": str(int(sums[0]))}
    if dtype.path == "distance":
        return {"millimetersSum": str(int(round(float(sums[0]) * 1000)))}
    if dtype.path in ("total-calories", "active-energy-burned"):
        return {"kcalSum": round(float(sums[0]), 3)}
    fat, cardio, peak = (str(int(v)) for v in sums)  # active-zone-minutes
    return {"sumInFatBurnHeartZone": fat, "sumInCardioHeartZone": cardio, "sumInPeakHeartZone": peak}


def window_values(dtype: DataType, conc, windows: np.ndarray, m_bucket: np.ndarray, h_bucket: np.ndarray,
                  step: int, bmr: float) -> list[dict[str, Any] | None]:
    """``rollup_value`` of each of ``windows`` (bucket numbers of minutes / samples)."""
    # Minutes and samples are in time order, so each window is one slice of them.
    if dtype.path == "heart-rate":
        h_from, h_to = np.searchsorted(h_bucket, windows, "left"), np.searchsorted(h_bucket, windows, "right")
        return [rollup_value(dtype, conc, windows[:0], np.arange(a, b), [], bmr)
                for a, b in zip(h_from.tolist(), h_to.tolist())]
    columns = minute_columns(dtype, conc, bmr)
    m_from, m_to = np.searchsorted(m_bucket, windows, "left"), np.searchsorted(m_bucket, windows, "right")
    if step <= 60:  # one minute per window (windows come from worn minutes): its values are the sums
        return [minute_rollup_value(dtype, list(sums))
                for sums in zip(*(column[m_from].tolist() for column in columns))]
    out: list[dict[str, Any] | None] = []
    for a, b in zip(m_from.tolist(), m_to.tolist()):
        worn = np.arange(a, b)[conc.worn[a:b]]
        out.append(minute_rollup_value(dtype, [column[worn].sum() for column in columns]) if worn.size else None)
    return out


def range_date(rng: dict[str, Any], name: str) -> date:
    """``range.<name>`` of a ``dailyRollUp`` body as a date (its ``CivilDateTime.date``)."""
    node = rng.get(name)
    if not isinstance(node, dict) or not isinstance(node.get("date"), dict):
        raise invalid(f"range.{name} must be a CivilDateTime such as "
                      '{"date": {"year": 2026, "month": 11, "day": 20}}')
    d = node["date"]
    try:
        return date(int(d["year"]), int(d["month"]), int(d["day"]))
    except (KeyError, ValueError, TypeError):
        raise invalid(f"range.{name}.date is not a valid calendar date") from None


def offset_page(body: dict[str, Any], total: int, default: int = DEFAULT_PAGE_SIZE) -> tuple[int, int]:
    """The ``[start, stop)`` slice of ``total`` rollup windows one page holds: ``pageSize`` and an
    offset ``pageToken`` (the rollup methods page by position)."""
    size = min(int(body.get("pageSize") or default), MAX_PAGE_SIZE)
    start = 0
    if body.get("pageToken"):
        try:
            start = int(base64.urlsafe_b64decode(str(body["pageToken"]) + "==").decode())
        except ValueError:
            raise invalid("the page token is not valid") from None
    return start, min(total, start + size)
