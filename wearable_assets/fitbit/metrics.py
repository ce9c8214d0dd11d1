"""The canonical metric vocabulary of ``wearables.fitbit_intraday``.

Both adapters (Google Health v4 and the legacy Fitbit Web API) emit rows with these metric
names and units, so storage, rollups, checks and the read API never know which one ran.
``aggregation`` says how an hourly/daily rollup combines samples: ``sum`` for counters,
``mean`` for levels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    aggregation: str  # "sum" | "mean"
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("heart_rate", "bpm", "mean", "heart rate samples (seconds apart, irregular)"),
        Metric("steps", "count", "sum", "steps per minute"),
        Metric("calories", "kcal", "sum", "energy expended per minute"),
        Metric("distance", "m", "sum", "distance per minute"),
        Metric("floors", "count", "sum", "floors climbed per minute"),
        Metric("spo2", "%", "mean", "blood oxygen saturation during sleep"),
        Metric("hrv_rmssd", "ms", "mean", "heart-rate variability (RMSSD) during sleep"),
        Metric("breathing_rate", "breaths/min", "mean", "breathing rate during sleep"),
        Metric("resting_heart_rate", "bpm", "mean", "daily resting heart rate (one value per day)"),
        Metric("active_zone_minutes", "min", "sum", "active zone minutes per minute"),
    )
}

SUMMED = frozenset(name for name, m in METRICS.items() if m.aggregation == "sum")
