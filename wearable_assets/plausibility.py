"""Plausibility rules: the range every stored measurement must fall in, and the screening that
quarantines the values outside it.

Why: a parser or device fault (steps = -500, steps = 10^12, heart rate = 0) otherwise loads
silently and then dominates every rollup and valid-day verdict built on it. Ranges are wide on
purpose: they reject what no human body or device can produce, not unusual days.

A value outside its range is **quarantined**: it is not written into ``wearables.fitbit_intraday``
or ``wearables.actigraph_daily_statistics`` (so no rollup or valid-day rule ever sees it) but into
``wearables.quarantined_values`` with the rule, the rule version and a reason, replaced per
participant-day together with the load. The raw payloads in the lake are never touched, so a
re-load under a later rule version can bring a value back.

Versioning works like the valid-day rule (``rollups.refresh.ValidDayRule``): ``RULE_VERSION`` is
stored with every quarantined value. Bump it whenever a range changes, and say so in
docs/rollups.md, so values quarantined under different rules can be told apart.

Fitbit ranges are per sample as stored (per-minute intervals for counters, see
``fitbit.metrics``); ActiGraph ranges are per daily-statistics row. Sources are cited per rule
(and in the table of docs/rollups.md). Plain Python and numpy: no Dagster, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from wearable_assets.fitbit.canonical import EPOCH, Batch
from wearable_assets.fitbit.metrics import METRICS

#: Bump when any range below changes meaning (stored with every quarantined value).
RULE_VERSION = "1"

#: The longest civil day (25 h, the day daylight-saving time ends): the ceiling of any
#: per-day minute count.
LONGEST_DAY_MINUTES = 1500


@dataclass(frozen=True)
class Range:
    """Inclusive ``low <= value <= high`` in ``unit``; ``source`` says where the numbers come from."""

    low: float
    high: float
    unit: str
    source: str

    def text(self, metric: str) -> str:
        """The rule as stored next to a quarantined value, e.g. ``25 <= heart_rate <= 250 bpm``."""
        return f"{self.low:g} <= {metric} <= {self.high:g} {self.unit}"

    def allows(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high

    def reason(self, value: float) -> str:
        """Why ``value`` was quarantined, in words a data manager can act on."""
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if value < self.low:
            return f"{value:g} {self.unit} is below the minimum of {self.low:g} {self.unit}"
        return f"{value:g} {self.unit} is above the maximum of {self.high:g} {self.unit}"


# --- Fitbit intraday (per stored sample) ---------------------------------------------------------
FITBIT_RANGES: dict[str, Range] = {
    # Already the project's bound before quarantine existed. Resting bradycardia in trained
    # athletes goes down to ~30 bpm; maximal heart rate is ~208 - 0.7 x age (Tanaka, Monahan &
    # Seals 2001, J Am Coll Cardiol 37:153) and tachyarrhythmias stay below ~250 bpm.
    "heart_rate": Range(25, 250, "bpm", "physiology: Tanaka et al. 2001 (HRmax); athlete bradycardia ~30 bpm"),
    "resting_heart_rate": Range(25, 250, "bpm", "same bounds as heart_rate (a resting value is a heart rate)"),
    # Steps per 1-minute interval (Google Health `steps` is a 1-min interval type; legacy 1min
    # detail). Sprinting cadence peaks near 4.5-5 steps/s (Weyand et al. 2000, J Appl Physiol
    # 89:1991), i.e. < 300 steps/min; negative counts are impossible.
    "steps": Range(0, 300, "count", "physiology: peak sprint cadence < 5 steps/s (Weyand et al. 2000)"),
    # kcal per minute. The highest activity in the Compendium of Physical Activities is ~23 MET
    # (Ainsworth et al. 2011, Med Sci Sports Exerc 43:1575); 1 MET ~ 1 kcal/kg/h, so a 150 kg
    # person at 23 MET spends ~58 kcal/min. Energy expenditure is never negative.
    "calories": Range(0, 60, "kcal", "Compendium of Physical Activities (Ainsworth et al. 2011): 23 MET x 150 kg"),
    # Metres per minute. The fastest human sprint peaks near 12.3 m/s ~ 740 m/min (Bolt 2009); 2000 m/min
    # (120 km/h) leaves room for GPS-tracked cycling descents and rejects car/train tracks and
    # unit faults (a km value read as mm, ...).
    "distance": Range(0, 2000, "m", "physiology: fastest sprint ~12.3 m/s; 120 km/h ceiling for GPS cycling"),
    # Floors (3 m of climb each) per minute. Tower-running records climb ~9 floors/min (Empire
    # State Building Run-Up, 86 floors in under 10 min); 30 allows barometer noise.
    "floors": Range(0, 30, "count", "tower-running records ~9 floors/min; Fitbit floor = 10 ft (3 m) climbed"),
    # Fitbit/Google Health: "fat burn = 1, cardio/peak = 2" active zone minutes per minute.
    "active_zone_minutes": Range(0, 2, "min",
                                 "Google Health API active-zone-minutes: 1 (fat burn) or 2 (cardio/peak) per minute"),
    # Fitbit reports SpO2 during sleep. Pulse oximeters are specified for accuracy over 70-100 %
    # (ISO 80601-2-61); below 50 % is far outside what a wrist sensor can measure and would be a
    # medical emergency, above 100 % is impossible.
    "spo2": Range(50, 100, "%", "ISO 80601-2-61 (oximeter accuracy specified over 70-100 %); > 100 % impossible"),
    # RMSSD in adults spans ~5-150 ms, occasionally ~250 ms in the young and very fit (Shaffer &
    # Ginsberg 2017, Front Public Health 5:258 and its norms); more is ectopic beats or artefact.
    "hrv_rmssd": Range(0, 300, "ms", "Shaffer & Ginsberg 2017 (HRV norms): adult RMSSD < ~250 ms"),
    # Sleeping adults breathe 12-20 breaths/min; Fitbit's breathing-rate feature reports the
    # nightly mean. < 4 or > 60 is a sensor fault (apnoea pauses do not lower a nightly mean that far).
    "breathing_rate": Range(4, 60, "breaths/min", "physiology: adult sleep 12-20 breaths/min; 4-60 bounds faults"),
}
assert set(FITBIT_RANGES) == set(METRICS), "every Fitbit metric needs a plausibility range"

# --- ActiGraph daily statistics (per row) -------------------------------------------------------
_DAY = f"a civil day has at most {LONGEST_DAY_MINUTES} minutes (25 h, the day daylight-saving time ends)"
ACTIGRAPH_RANGES: dict[str, Range] = {
    "wear_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "non_wear_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "sleep_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "sedentary_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "light_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "moderate_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "vigorous_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    "mvpa_minutes": Range(0, LONGEST_DAY_MINUTES, "min", _DAY),
    # Vector-magnitude counts over wear time. "Very vigorous" starts near 9,500-9,650 counts/min
    # (Freedson, Melanson & Sirard 1998, vertical axis; Sasaki, John & Freedson 2011, J Sci Med
    # Sport 14:411, vector magnitude); 60,000 counts/min for every minute of the longest day is
    # beyond any wearer.
    "total_counts": Range(0, 60_000 * LONGEST_DAY_MINUTES, "counts",
                          "Freedson 1998 / Sasaki 2011 cut points (very vigorous ~9,500 cpm); 60,000 cpm x 1500 min"),
    # Steps: the Fitbit per-minute ceiling (300/min) over the longest day.
    "steps": Range(0, 300 * LONGEST_DAY_MINUTES, "count", "300 steps/min (Weyand et al. 2000) x 1500 min"),
    # Mean METs over wear time: the Compendium's range (sleeping 0.9 MET, highest activity ~23 MET).
    "mets": Range(0, 23, "MET", "Compendium of Physical Activities (Ainsworth et al. 2011): highest ~23 MET"),
    # Wear-time kcal per day: the highest sustained expenditures measured (Tour de France riders,
    # ~8,600 kcal/day by doubly labelled water; Westerterp et al. 1986, Int J Sports Med 7 Suppl 1)
    # doubled for margin.
    "calories": Range(0, 20_000, "kcal", "Westerterp et al. 1986: Tour de France ~8,600 kcal/day, doubled"),
}
#: Numeric columns of the ActiGraph row that are identifiers, not measurements: no range applies.
ACTIGRAPH_IDENTIFIERS = frozenset({"setting_id", "daily_statistic_id"})


@dataclass(frozen=True)
class Quarantined:
    """One value kept out of the measurement tables, as ``wearables.quarantined_values`` stores it."""

    metric: str
    ts: datetime | None  # the Fitbit sample time; None for an ActiGraph daily field
    value: float
    rule: str
    reason: str
    rule_version: str = RULE_VERSION


# --- Fitbit: column-wise screening ------------------------------------------------------------
@dataclass
class BatchScreen:
    """Splits Fitbit batches into plausible rows (passed on) and quarantined ones (kept here as
    columns: a fault that breaks every heart-rate sample of a 1-s day is 86,400 of them, so
    never one Python object each until they are written)."""

    ranges: Mapping[str, Range] = field(default_factory=lambda: FITBIT_RANGES)
    quarantined: list[Batch] = field(default_factory=list)

    def screen(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        """``batches`` without their implausible rows; the rest accumulate in ``quarantined``."""
        for batch in batches:
            rule = self.ranges[batch.metric]
            # NaN compares False both ways, so it fails ``ok`` and is quarantined too.
            ok = (batch.value >= rule.low) & (batch.value <= rule.high)
            if ok.all():
                yield batch
                continue
            bad = ~ok
            self.quarantined.append(_take(batch, bad))
            if ok.any():
                yield _take(batch, ok)

    def counts(self) -> dict[str, int]:
        """Quarantined values per metric (for metadata and the status row)."""
        out: dict[str, int] = {}
        for batch in self.quarantined:
            out[batch.metric] = out.get(batch.metric, 0) + len(batch)
        return dict(sorted(out.items()))

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.quarantined)

    def values(self) -> Iterator[Quarantined]:
        """The quarantined values one by one (only the bad ones: few, except under a parser fault)."""
        for batch in self.quarantined:
            rule = self.ranges[batch.metric]
            text = rule.text(batch.metric)
            for ts, value in zip(_datetimes(batch.ts), batch.value.tolist()):
                yield Quarantined(batch.metric, ts, value, text, rule.reason(value))


def _take(batch: Batch, mask: np.ndarray) -> Batch:
    return Batch(batch.metric, batch.ts[mask], batch.value[mask], batch.offset[mask], batch.device[mask],
                 batch.devices)


def _datetimes(us: np.ndarray) -> list[datetime]:
    return [EPOCH + timedelta(microseconds=int(v)) for v in us.tolist()]


# --- ActiGraph: one row at a time (a few rows per participant-day) --------------------------------
def screen_row(row: dict[str, Any], ranges: Mapping[str, Range] = ACTIGRAPH_RANGES) -> list[Quarantined]:
    """Set each implausible field of a typed ActiGraph row to NULL and return what was removed.

    NULL is what the table already means by "not measured", so rollups and the valid-day rule
    treat a quarantined field exactly like an absent one; the API record (``row['record']``) is
    left as received."""
    removed: list[Quarantined] = []
    for name, rule in ranges.items():
        value = row.get(name)
        if value is None:
            continue
        number = float(value)
        if not rule.allows(number):
            removed.append(Quarantined(name, None, number, rule.text(name), rule.reason(number)))
            row[name] = None
    return removed


def rules_table() -> list[dict[str, str]]:
    """Every rule as rows (device, metric, rule, source): for docs and check metadata."""
    rows = [{"device": "fitbit", "metric": m, "rule": r.text(m), "source": r.source} for m, r in FITBIT_RANGES.items()]
    rows += [{"device": "actigraph", "metric": m, "rule": r.text(m), "source": r.source}
             for m, r in ACTIGRAPH_RANGES.items()]
    return rows
