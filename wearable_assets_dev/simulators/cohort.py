"""A seeded synthetic cohort: what each simulated wearer's device recorded, per civil day.

The two Fitbit simulators (Google Health v4 and the legacy Web API) serve the SAME underlying
truth, so the pipeline can be tested against either adapter and the two can be compared.

Design rules, because the pipeline's correctness tests rely on them:

* **Deterministic per (user, local date).** Every random draw comes from a generator seeded
  with ``(user seed, date ordinal, stream)``, so ``cohort.day(u, d)`` is identical on every call,
  in any order, in any process. Nothing depends on the wall clock except *which part* of a day
  has been synced (see below).
* **Civil days follow the user's IANA zone.** A day is ``[local midnight, next local midnight)``
  in UTC; on DST days it lasts 23 or 25 hours and no sample falls outside it.
* **Travel moves the device's clock, not the data.** ``SimUser.travel`` lists the instants at
  which the device's zone changes (a trip). The recorded stream (``SimDay``, keyed by the
  user's home ``time_zone``) is the same with or without it, so a test can compare what a load
  stored with the truth instant by instant; what travel changes is what the provider computes
  from the device's zone: every point's UTC offset and civil time, the civil days that civil
  filters and ``dailyRollUp`` select, and the ``date`` of daily values (``device_offsets``).
* **Sleep is keyed by its wake date.** The night that ends on the morning of ``d`` belongs to
  ``d`` (as ``dateOfSleep`` does in the legacy API); it normally starts the previous evening, so
  day ``d-1``'s minute data shows zero steps during the first part of it.
* **Late sync.** Each user has a sync lag; the cohort has a simulated clock (``cohort.now``,
  default: the real time). Data recorded after a user's last sync is not served yet, so a day
  grows when the clock advances. ``SimDay.until(t)`` gives that truncated view.
* **Off-wrist gaps** remove heart rate and minute data (Google serves no points for them; the
  legacy API zero-fills steps). Some users have whole "long off-wrist" days.
* **Naps only on request.** ``add_nap`` gives a day a short daytime sleep besides the main one
  (under 3 hours, so the providers do not stage it); the minute data does not show it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    from wearable_assets.roster import Participant

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Resting-state inter-sample gaps (seconds) and their weights: mostly 5 s with some 1-3 s and
# 10/15 s gaps, which is how recorded Fitbit "1sec" heart rate looks (~15-20K samples a day).
_REST_GAPS = np.array([1, 2, 3, 5, 10, 15])
_REST_WEIGHTS = np.array([0.10, 0.10, 0.15, 0.50, 0.10, 0.05])

# Per-minute energy cost (METs) by intensity: 0 sedentary, 1 light, 2 moderate, 3 vigorous.
_METS = np.array([1.2, 2.8, 4.2, 8.5])
_ASLEEP_METS = 0.95
# Stride length in metres by intensity.
_STRIDE_M = np.array([0.60, 0.70, 0.78, 1.15])

SLEEP_LEVELS = ("wake", "light", "deep", "rem")


def to_epoch(dt: datetime) -> int:
    """Whole seconds since 1970 for an aware datetime."""
    return int((dt - _EPOCH).total_seconds())


def from_epoch(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=float(seconds))


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    """UTC instant of local midnight starting ``day`` in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _stable_int(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class OffsetTable:
    """UTC offsets (seconds) of a zone over a UTC span, looked up vectorised.

    ``zoneinfo`` answers one datetime at a time; a day has at most a couple of offset changes,
    so we find them once and then map whole sample arrays with ``searchsorted``.
    """

    def __init__(self, tz: ZoneInfo, start: int, end: int, step: int = 900) -> None:
        def offset(t: int) -> int:
            return int(from_epoch(t).astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]

        starts, offsets = [start], [offset(start)]
        t = start
        while t < end:
            nxt = min(t + step, end)
            if offset(nxt) != offsets[-1]:
                lo, hi = t, nxt  # offset(lo) == current, offset(hi) == new
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if offset(mid) == offsets[-1]:
                        lo = mid
                    else:
                        hi = mid
                starts.append(hi)
                offsets.append(offset(hi))
            t = nxt
        self.starts = np.array(starts, dtype=np.int64)
        self.offsets = np.array(offsets, dtype=np.int64)
        self.starts.flags.writeable = self.offsets.flags.writeable = False  # shared by offset_table

    @classmethod
    def of(cls, starts: np.ndarray, offsets: np.ndarray) -> OffsetTable:
        """A table from its change points (sorted epoch seconds) and the offsets from each on."""
        table = cls.__new__(cls)
        table.starts, table.offsets = starts.astype(np.int64), offsets.astype(np.int64)
        table.starts.flags.writeable = table.offsets.flags.writeable = False
        return table

    def at(self, t: np.ndarray | int) -> np.ndarray:
        idx = np.searchsorted(self.starts, t, side="right") - 1
        return self.offsets[np.clip(idx, 0, len(self.offsets) - 1)]


@functools.lru_cache(maxsize=512)
def offset_table(tz: ZoneInfo, start: int, end: int) -> OffsetTable:
    """A shared, read-only ``OffsetTable``. Building one asks ``zoneinfo`` every 15 minutes of the
    span, and the simulators ask for the same few spans (days padded by a day) over and over."""
    return OffsetTable(tz, start, end)


@functools.lru_cache(maxsize=512)
def _travel_offsets(time_zone: str, travel: tuple[tuple[datetime, str], ...], start: int, end: int) -> OffsetTable:
    cuts = [start] + [to_epoch(at) for at, _ in travel if start < to_epoch(at) < end] + [end]
    zones = [time_zone] + [zone for at, zone in travel if to_epoch(at) <= start]
    zones = [zones[-1]] + [zone for at, zone in travel if start < to_epoch(at) < end]
    starts: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    for zone, a, b in zip(zones, cuts, cuts[1:]):
        table = offset_table(ZoneInfo(zone), a, b)
        inside = table.starts < b  # a change exactly at ``b`` belongs to the next segment
        starts.append(table.starts[inside])
        offsets.append(table.offsets[inside])
    return OffsetTable.of(np.concatenate(starts), np.concatenate(offsets))


def device_offsets(user: SimUser, start: int, end: int) -> OffsetTable:
    """The UTC offsets of the user's DEVICE over ``[start, end)`` (epoch seconds): its home zone's,
    switched at every ``travel`` instant. This is what the provider stamps on each point
    ("the timezone the subject is in at the time of the observation")."""
    if not user.travel:
        return offset_table(user.tz, start, end)
    return _travel_offsets(user.time_zone, user.travel, start, end)


@dataclass(frozen=True)
class SimUser:
    """One simulated wearer. Traits left as ``None`` are drawn from the seed (stable per user)."""

    user_id: str
    time_zone: str
    seed: int | None = None
    resting_hr: float | None = None
    #: Relative amount of daily activity (1.0 is typical: ~7-10K steps).
    activity: float | None = None
    #: Usual local bedtime as an hour of the evening (23.5 = 23:30).
    bedtime_hour: float | None = None
    sleep_hours: float | None = None
    #: How far behind real time the device's data reaches the cloud.
    sync_lag: timedelta = timedelta(minutes=20)
    #: Local dates on which the device stayed off the wrist all day.
    off_wrist_days: frozenset[date] = frozenset()
    #: Chance that any other day is such a long off-wrist day.
    long_off_wrist_rate: float = 0.0
    device: str = "Charge 6"
    legacy_user_id: str | None = None
    age: int | None = None
    #: Device time-zone changes, ``(UTC instant, IANA zone)`` in time order: from each instant on,
    #: the device's clock is in that zone (before the first one it is in ``time_zone``). A trip
    #: to London and back is two entries. The wearer's routine keeps following ``time_zone``.
    travel: tuple[tuple[datetime, str], ...] = ()

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)  # fail early on a bad zone name
        travel = tuple((at, zone) for at, zone in self.travel)
        for at, zone in travel:
            if at.tzinfo is None:
                raise ValueError(f"travel instant {at!r} of {self.user_id} must be timezone-aware")
            ZoneInfo(zone)
        if any(b[0] <= a[0] for a, b in itertools.pairwise(travel)):
            raise ValueError(f"travel of {self.user_id} must be in strictly increasing time order")
        object.__setattr__(self, "travel", tuple((at.astimezone(UTC), zone) for at, zone in travel))
        base = self.seed if self.seed is not None else _stable_int("user", self.user_id) % (2**31)
        object.__setattr__(self, "seed", base)
        rng = np.random.default_rng([base, 0])
        draws = rng.random(6)
        if self.resting_hr is None:
            object.__setattr__(self, "resting_hr", round(float(52 + 16 * draws[0]), 1))
        if self.activity is None:
            object.__setattr__(self, "activity", round(float(0.6 + 0.8 * draws[1]), 2))
        if self.bedtime_hour is None:
            object.__setattr__(self, "bedtime_hour", round(float(22.0 + 1.75 * draws[2]), 2))
        if self.sleep_hours is None:
            object.__setattr__(self, "sleep_hours", round(float(6.5 + 1.75 * draws[3]), 2))
        if self.age is None:
            object.__setattr__(self, "age", int(25 + 40 * draws[4]))
        if self.legacy_user_id is None:
            alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
            n = _stable_int("legacy", self.user_id)
            object.__setattr__(self, "legacy_user_id", "".join(alphabet[(n >> (5 * i)) % 32] for i in range(6)))
        object.__setattr__(self, "off_wrist_days", frozenset(self.off_wrist_days))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def zone_at(self, at: datetime) -> ZoneInfo:
        """The device's zone at the instant ``at`` (``time_zone`` unless ``travel`` moved it)."""
        zone = self.time_zone
        for since, name in self.travel:
            if since > at:
                break
            zone = name
        return ZoneInfo(zone)

    @property
    def max_hr(self) -> int:
        return 220 - int(self.age or 40)

    @property
    def health_user_id(self) -> str:
        """A stable numeric id, like Google Health's ``healthUserId``."""
        return str(_stable_int("health", self.user_id) % 10**19).rjust(19, "1")

    @property
    def bmr_kcal_per_min(self) -> float:
        return (1350 + 550 * ((self.seed or 0) % 97) / 96) / 1440

    def rng(self, day: date, stream: int) -> np.random.Generator:
        return np.random.default_rng([int(self.seed or 0), day.toordinal(), stream])


@dataclass(frozen=True)
class SleepStage:
    """One segment of a sleep log: ``level`` from ``SLEEP_LEVELS``, 30-s granular."""

    start: datetime
    seconds: int
    level: str

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class SleepSession:
    """The main sleep that ends on the morning of ``date_of_sleep`` (UTC instants)."""

    log_id: int
    date_of_sleep: date
    start: datetime
    end: datetime
    stages: tuple[SleepStage, ...]
    short_wakes: tuple[SleepStage, ...]
    is_main: bool = True

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def level_seconds(self) -> dict[str, int]:
        """Seconds per level after carving the short wakes out of the stages they overlap."""
        out = {level: 0 for level in SLEEP_LEVELS}
        for stage in self.stages:
            out[stage.level] += stage.seconds
        for wake in self.short_wakes:
            covering = next(s for s in self.stages if s.start <= wake.start < s.end)
            out[covering.level] -= wake.seconds
            out["wake"] += wake.seconds
        return out

    def level_counts(self) -> dict[str, int]:
        out = {level: 0 for level in SLEEP_LEVELS}
        for stage in self.stages:
            out[stage.level] += 1
        out["wake"] += len(self.short_wakes)
        return out

    @property
    def minutes_asleep(self) -> int:
        secs = self.level_seconds()
        return (secs["light"] + secs["deep"] + secs["rem"]) // 60

    @property
    def minutes_awake(self) -> int:
        return self.level_seconds()["wake"] // 60

    @property
    def time_in_bed(self) -> int:
        return self.seconds // 60

    @property
    def efficiency(self) -> int:
        return round(100 * self.minutes_asleep / max(1, self.time_in_bed))

    def level_at(self, t: np.ndarray) -> np.ndarray:
        """Index into ``SLEEP_LEVELS`` for epoch seconds ``t`` (-1 outside the session)."""
        starts = np.array([to_epoch(s.start) for s in self.stages], dtype=np.int64)
        levels = np.array([SLEEP_LEVELS.index(s.level) for s in self.stages], dtype=np.int8)
        idx = np.searchsorted(starts, t, side="right") - 1
        out = np.where(idx >= 0, levels[np.clip(idx, 0, len(levels) - 1)], -1).astype(np.int8)
        inside = (t >= to_epoch(self.start)) & (t < to_epoch(self.end))
        return np.where(inside, out, -1).astype(np.int8)


@dataclass(frozen=True)
class SpO2Sample:
    at: datetime
    percent: float


@dataclass(frozen=True)
class HrvWindow:
    """A 5-minute HRV window during sleep."""

    start: datetime
    rmssd: float
    coverage: float
    hf: float
    lf: float

    @property
    def sdnn(self) -> float:
        return round(self.rmssd * 1.25, 3)


@dataclass(frozen=True)
class BreathingRate:
    """Breaths per minute over the main sleep; ``None`` where the night had no such stage."""

    full: float
    deep: float | None
    light: float | None
    rem: float | None


@dataclass(frozen=True)
class SimDay:
    """Everything one user's device recorded on one local date.

    Arrays are numpy so a benchmark can ask for 86,400 heart-rate samples a day without a
    million Python objects; ``heart_rate`` gives the (UTC datetime, bpm) view.
    Minute arrays cover every minute of the civil day (1380/1440/1500); ``worn`` marks the
    minutes the device was on the wrist.
    """

    user_id: str
    date: date
    time_zone: str
    start: datetime
    end: datetime
    hr_times: np.ndarray  # int64 epoch seconds, strictly increasing
    hr_bpm: np.ndarray  # int16
    minute_starts: np.ndarray  # int64 epoch seconds
    steps: np.ndarray  # int32
    calories: np.ndarray  # float64 kcal (BMR + activity)
    distance_m: np.ndarray  # float64 metres
    floors: np.ndarray  # int32
    intensity: np.ndarray  # int8 0 sedentary/asleep .. 3 vigorous
    azm: np.ndarray  # int8 active-zone minutes earned: 0, 1 (fat burn) or 2 (cardio/peak)
    hr_zone: np.ndarray  # int8 0 none, 1 fat burn, 2 cardio, 3 peak
    worn: np.ndarray  # bool
    sleep: SleepSession | None
    spo2: tuple[SpO2Sample, ...]
    hrv: tuple[HrvWindow, ...]
    breathing: BreathingRate | None
    resting_hr: int | None
    long_off_wrist: bool
    synced_until: datetime | None = None  # None: the whole day (no truncation applied)
    naps: tuple[SleepSession, ...] = ()  # short daytime sleeps ending on this day (``add_nap``)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def heart_rate(self) -> list[tuple[datetime, int]]:
        return [(from_epoch(t), int(b)) for t, b in zip(self.hr_times.tolist(), self.hr_bpm.tolist())]

    def until(self, t: datetime) -> SimDay:
        """The part of this day the cloud has once the device last synced at ``t``.

        Samples at or after ``t`` are gone; minutes that had not finished by ``t`` are marked
        not worn (no data) and carry zero activity; sleep-derived values appear only once the
        whole sleep has synced.
        """
        cut = to_epoch(t)
        if cut >= to_epoch(self.end) and (self.sleep is None or self.sleep.end <= t):
            return replace(self, synced_until=t)
        keep_hr = self.hr_times < cut
        done = self.minute_starts + 60 <= cut
        sleep_ok = self.sleep is not None and self.sleep.end <= t
        return replace(
            self,
            hr_times=self.hr_times[keep_hr],
            hr_bpm=self.hr_bpm[keep_hr],
            steps=np.where(done, self.steps, 0),
            distance_m=np.where(done, self.distance_m, 0.0),
            floors=np.where(done, self.floors, 0),
            azm=np.where(done, self.azm, 0),
            hr_zone=np.where(done, self.hr_zone, 0),
            intensity=np.where(done, self.intensity, 0),
            worn=self.worn & done,
            sleep=self.sleep if sleep_ok else None,
            spo2=self.spo2 if sleep_ok else (),
            hrv=self.hrv if sleep_ok else (),
            breathing=self.breathing if sleep_ok else None,
            resting_hr=self.resting_hr if sleep_ok else None,
            synced_until=t,
            naps=tuple(n for n in self.naps if n.end <= t),
        )


def _round30(seconds: float) -> int:
    return max(30, int(round(seconds / 30.0)) * 30)


def _make_sleep(user: SimUser, day: date) -> SleepSession:
    """The main sleep ending on the morning of ``day`` (random stream 1)."""
    rng = user.rng(day, 1)
    tz = user.tz
    bedtime_local = datetime.combine(day - timedelta(days=1), time(0), tzinfo=tz) + timedelta(
        hours=float(user.bedtime_hour or 23.0) + rng.normal(0, 0.6)
    )
    # Local wall time -> UTC through the zone (handles a bedtime on a DST evening).
    naive = bedtime_local.replace(tzinfo=None)
    start = datetime.combine(naive.date(), naive.time(), tzinfo=tz).astimezone(UTC)
    start = from_epoch(to_epoch(start) // 30 * 30)
    total = _round30(float(np.clip(float(user.sleep_hours or 7.5) * 3600 + rng.normal(0, 2400), 4 * 3600, 10 * 3600)))

    stages: list[tuple[str, int]] = [("wake", _round30(rng.uniform(60, 600)))]
    used = stages[0][1]
    cycle = 0
    while used < total:
        deep = rng.uniform(1200, 2400) if cycle < 2 else rng.uniform(0, 600)
        rem = rng.uniform(300, 900) if cycle < 2 else rng.uniform(1200, 2100)
        plan = [("light", rng.uniform(900, 2400)), ("deep", deep), ("light", rng.uniform(600, 1200)), ("rem", rem)]
        if rng.random() < 0.35:
            plan.append(("wake", rng.uniform(180, 420)))
        for level, secs in plan:
            if secs < 30:
                continue
            seg = min(_round30(secs), total - used)
            if seg <= 0:
                break
            if stages and stages[-1][0] == level:
                stages[-1] = (level, stages[-1][1] + seg)
            else:
                stages.append((level, seg))
            used += seg
        cycle += 1

    out: list[SleepStage] = []
    t = start
    for level, secs in stages:
        out.append(SleepStage(t, secs, level))
        t += timedelta(seconds=secs)
    end = t

    shorts: list[SleepStage] = []
    for stage in out:
        if stage.level in ("light", "rem") and stage.seconds >= 300 and rng.random() < 0.5:
            secs = int(rng.choice([30, 60, 90, 120, 150]))
            offset = _round30(rng.uniform(60, stage.seconds - secs - 60)) if stage.seconds - secs > 120 else 60
            shorts.append(SleepStage(stage.start + timedelta(seconds=offset), secs, "wake"))
    log_id = 20_000_000_000 + _stable_int("sleep", user.user_id, day.isoformat()) % 10_000_000_000
    return SleepSession(log_id, day, start, end, tuple(out), tuple(shorts))


#: Deliberately awkward wearers in the demo roster: P004 syncs about a day and a half late and
#: now and then leaves the tracker off all day, so the demo shows late data and empty days.
DEMO_TRAITS: dict[str, dict[str, object]] = {
    "P004": {"sync_lag": timedelta(hours=36), "long_off_wrist_rate": 0.15},
}


def _gaps(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.choice(_REST_GAPS, size=size, p=_REST_WEIGHTS)


class SyntheticCohort:
    """Simulated wearers plus a clock that decides how much of their data has synced.

    ``hr_interval_s`` switches heart rate to a fixed grid (1.0 gives 86,400 samples a day) with
    no off-wrist gaps, for load tests; the default is the realistic irregular sampling.
    """

    def __init__(
        self,
        users: Iterable[SimUser],
        now: datetime | None = None,
        hr_interval_s: float | None = None,
        cache_size: int = 64,
    ) -> None:
        self.users: dict[str, SimUser] = {}
        for user in users:
            if user.user_id in self.users:
                raise ValueError(f"user {user.user_id!r} is listed twice in the cohort")
            self.users[user.user_id] = user
        self._now = now
        self.hr_interval_s = hr_interval_s
        self._last_sync: dict[str, datetime] = {}
        self._cache: OrderedDict[tuple[str, date], SimDay] = OrderedDict()
        self._sleep_cache: OrderedDict[tuple[str, date], SleepSession] = OrderedDict()
        self._naps: dict[tuple[str, date], tuple[SleepSession, ...]] = {}
        self._cache_size = cache_size
        self._lock = threading.RLock()

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_roster(
        cls,
        participants: Sequence[Participant],
        traits: dict[str, dict[str, object]] | None = None,
        **kwargs: object,
    ) -> SyntheticCohort:
        """One user per participant with a Fitbit account (``fitbit_user_id``), in their zone.

        ``traits`` maps a user id to ``SimUser`` fields to override (e.g. ``DEMO_TRAITS``).
        """
        traits = traits or {}
        users = [
            SimUser(user_id=p.fitbit_user_id, time_zone=p.time_zone, **traits.get(p.fitbit_user_id, {}))  # type: ignore[arg-type]
            for p in participants
            if p.fitbit_user_id
        ]
        return cls(users, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def demo(cls, roster_path: Path | str | None = None, **kwargs: object) -> SyntheticCohort:
        """The demo roster's Fitbit users with ``DEMO_TRAITS`` (late syncs, long off-wrist days)."""
        from wearable_assets import settings
        from wearable_assets.roster import load_roster

        participants = load_roster(roster_path or settings.roster_path())
        return cls.from_roster(participants, traits=DEMO_TRAITS, **kwargs)

    # --- clock and sync -------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The simulated "now" (real time unless set)."""
        return self._now if self._now is not None else datetime.now(UTC)

    @now.setter
    def now(self, value: datetime | None) -> None:
        if value is not None and value.tzinfo is None:
            raise ValueError("cohort.now must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc))")
        self._now = value

    def advance(self, delta: timedelta) -> datetime:
        """Move the simulated clock forward (pins it if it was following real time)."""
        self._now = self.now + delta
        return self._now

    def user(self, user_id: str) -> SimUser:
        try:
            return self.users[user_id]
        except KeyError:
            raise KeyError(f"unknown simulated user {user_id!r}; cohort has {sorted(self.users)}") from None

    def last_sync(self, user_id: str) -> datetime:
        """When the user's device last uploaded: ``now - sync_lag`` unless pinned."""
        user = self.user(user_id)
        pinned = self._last_sync.get(user_id)
        return pinned if pinned is not None else self.now - user.sync_lag

    def set_last_sync(self, user_id: str, at: datetime | None) -> None:
        """Pin a user's last sync time (``None`` goes back to ``now - sync_lag``)."""
        self.user(user_id)
        if at is None:
            self._last_sync.pop(user_id, None)
        else:
            self._last_sync[user_id] = at

    def local_today(self, user_id: str) -> date:
        return self.now.astimezone(self.user(user_id).tz).date()

    def local_dates(self, user_id: str, start: datetime, end: datetime) -> list[date]:
        """Local dates whose civil day overlaps the UTC span ``[start, end)``."""
        tz = self.user(user_id).tz
        first = start.astimezone(tz).date()
        last = (end - timedelta(microseconds=1)).astimezone(tz).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    # --- data -----------------------------------------------------------------------------
    def sleep(self, user_id: str, day: date) -> SleepSession:
        """The main sleep ending on the morning of ``day`` (whole truth, not sync-limited)."""
        key = (user_id, day)
        with self._lock:
            hit = self._sleep_cache.get(key)
            if hit is not None:
                return hit
        session = _make_sleep(self.user(user_id), day)
        with self._lock:
            self._sleep_cache[key] = session
            while len(self._sleep_cache) > 4 * self._cache_size:
                self._sleep_cache.popitem(last=False)
        return session

    def add_nap(self, user_id: str, day: date, start: time = time(14, 0), minutes: int = 60) -> SleepSession:
        """Give ``day`` a daytime nap starting at local ``start`` (besides its main sleep).

        Under 3 hours by default, so the providers do not stage it: Google Health serves it
        ``stagesStatus: REJECTED_NAP`` without stages, the legacy API as a "classic" log. Call
        it before the simulators serve the day (their answers are cached)."""
        if not 0 < minutes < 24 * 60:
            raise ValueError("a nap lasts between 1 minute and a day")
        tz = self.user(user_id).tz
        begin = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
        log_id = 30_000_000_000 + _stable_int("nap", user_id, day.isoformat(), start.isoformat()) % 10_000_000_000
        nap = SleepSession(log_id, day, begin, begin + timedelta(minutes=minutes), (), (), is_main=False)
        with self._lock:
            self._naps[(user_id, day)] = (*self._naps.get((user_id, day), ()), nap)
        return nap

    def day(self, user_id: str, day: date) -> SimDay:
        """Everything recorded on ``day`` (ignores sync; see ``synced_day``)."""
        key = (user_id, day)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                naps = self._naps.get(key)
                return replace(hit, naps=naps) if naps else hit
        sim_day = self._generate(self.user(user_id), day)
        with self._lock:
            self._cache[key] = sim_day
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            naps = self._naps.get(key)
        if naps:
            return replace(sim_day, naps=naps)
        return sim_day

    def synced_day(self, user_id: str, day: date) -> SimDay:
        """What the cloud holds for ``day`` at the current simulated time."""
        return self.day(user_id, day).until(self.last_sync(user_id))

    def synced_days(self, user_id: str, start: datetime, end: datetime) -> list[SimDay]:
        return [self.synced_day(user_id, d) for d in self.local_dates(user_id, start, end)]

    # --- generation -----------------------------------------------------------------------
    def _generate(self, user: SimUser, day: date) -> SimDay:
        tz = user.tz
        start_dt = local_midnight_utc(day, tz)
        end_dt = local_midnight_utc(day + timedelta(days=1), tz)
        start, end = to_epoch(start_dt), to_epoch(end_dt)
        n_min = (end - start) // 60
        minute_starts = start + 60 * np.arange(n_min, dtype=np.int64)
        rng = user.rng(day, 2)
        rhr_day = float(user.resting_hr or 60) + rng.normal(0, 1.5)

        # Sleep: this morning's session and tonight's (which may start before midnight).
        tonight = self.sleep(user.user_id, day + timedelta(days=1))
        morning = self.sleep(user.user_id, day)
        level = np.full(n_min, -1, dtype=np.int8)
        for session in (morning, tonight):
            lv = session.level_at(minute_starts + 30)
            level = np.where(lv >= 0, lv, level)
        asleep = level >= 0
        wake_idx = int(np.clip((to_epoch(morning.end) - start) // 60, 0, n_min))
        bed_idx = int(np.clip((to_epoch(tonight.start) - start) // 60, 0, n_min))
        if bed_idx <= wake_idx:  # pathological: no awake time
            bed_idx = min(n_min, wake_idx + 60)

        # Activity bouts in the awake window.
        intensity = np.zeros(n_min, dtype=np.int8)
        activity = float(user.activity or 1.0)
        lo, hi = wake_idx + 20, bed_idx - 30
        if hi - lo > 60:
            for _ in range(int(rng.poisson(4 * activity))):
                length = int(rng.integers(5, 35))
                at = int(rng.integers(lo, max(lo + 1, hi - length)))
                intensity[at : at + length] = np.maximum(intensity[at : at + length], 1 if rng.random() < 0.5 else 2)
            if rng.random() < 0.45 * activity:
                length = int(rng.integers(20, 60))
                at = int(rng.integers(lo, max(lo + 1, hi - length)))
                intensity[at : at + length] = 3
        intensity[asleep] = 0

        # Off-wrist: short gaps most days, the whole waking day on long off-wrist days.
        off = np.zeros(n_min, dtype=bool)
        long_off = day in user.off_wrist_days or rng.random() < user.long_off_wrist_rate
        if long_off:
            off[min(n_min, wake_idx + 15) : max(0, bed_idx - 45)] = True
        elif hi - lo > 120:
            for _ in range(int(rng.poisson(1.2))):
                length = int(rng.integers(10, 70))
                at = int(rng.integers(lo, max(lo + 1, hi - length)))
                off[at : at + length] = True
        off &= ~asleep
        worn = ~off
        if self.hr_interval_s is not None:
            worn = np.ones(n_min, dtype=bool)
            off = ~worn
        intensity[off] = 0

        # Steps, distance, floors, calories per minute.
        fidget = (~asleep) & (intensity == 0) & (rng.random(n_min) < 0.25)
        steps = np.zeros(n_min, dtype=np.float64)
        steps[fidget] = rng.poisson(7, fidget.sum())
        for lvl, (mean, sd) in {1: (62, 15), 2: (108, 9), 3: (162, 7)}.items():
            mask = intensity == lvl
            steps[mask] = rng.normal(mean, sd, mask.sum())
        steps = np.clip(np.round(steps), 0, None).astype(np.int32)
        steps[off | asleep] = 0
        distance_m = np.round(steps * _STRIDE_M[intensity], 2)
        floors = ((intensity >= 1) & (intensity <= 2) & (rng.random(n_min) < 0.05)).astype(np.int32)
        mets = np.where(asleep, _ASLEEP_METS, _METS[intensity])
        mets = np.where(fidget, 1.5, mets)
        mets = np.where(off, 1.0, mets)
        calories = np.round(mets * user.bmr_kcal_per_min, 4)

        # Heart rate: a minute-level target (sleep stage, circadian, activity) smoothed so it
        # ramps, then sampled at irregular instants with noise.
        local_hour = ((minute_starts - start) / 3600.0) % 24
        target = rhr_day + 12 + 4 * np.sin((local_hour - 9) / 24 * 2 * np.pi)
        stage_delta = np.array([8.0, -3.0, -6.0, 3.0])  # wake, light, deep, rem
        target = np.where(asleep, rhr_day - 2 + stage_delta[np.clip(level, 0, 3)], target)
        reserve = user.max_hr - rhr_day
        target = np.where(intensity == 1, rhr_day + 0.35 * reserve, target)
        target = np.where(intensity == 2, rhr_day + 0.50 * reserve, target)
        target = np.where(intensity == 3, rhr_day + rng.uniform(0.68, 0.9) * reserve, target)
        smooth = np.empty(n_min)
        acc = float(target[0])
        for i, value in enumerate(target.tolist()):
            acc += 0.35 * (value - acc)
            smooth[i] = acc

        if self.hr_interval_s is not None:
            times = np.arange(start, end, self.hr_interval_s)
        else:
            hr_rng = user.rng(day, 3)
            rest = start + np.cumsum(_gaps(hr_rng, (end - start) // 3 + 10))
            rest = rest[rest < end]
            active_min = np.flatnonzero(intensity >= 2)
            burst = (minute_starts[active_min][:, None] + np.arange(0, 60, 2)[None, :]).ravel()
            burst = burst + hr_rng.integers(0, 2, burst.size)
            rest_minute = (rest - start) // 60
            rest = rest[intensity[np.clip(rest_minute, 0, n_min - 1)] < 2]
            times = np.unique(np.concatenate([rest, burst]))
            times = times[(times >= start) & (times < end)]
            times = times[worn[(times - start) // 60]]
        times = times.astype(np.int64)
        noise_rng = user.rng(day, 4)
        centers = minute_starts + 30
        bpm = np.interp(times, centers, smooth) + noise_rng.normal(0, 1.8, times.size)
        hr_bpm = np.clip(np.round(bpm), 35, 220).astype(np.int16)

        hrr = (smooth - rhr_day) / max(1.0, reserve)
        hr_zone = np.select([hrr >= 0.85, hrr >= 0.6, hrr >= 0.4], [3, 2, 1], 0).astype(np.int8)
        hr_zone[~worn | asleep] = 0
        azm = np.array([0, 1, 2, 2], dtype=np.int8)[hr_zone]

        # Night-time metrics from this morning's sleep.
        s_rng = user.rng(day, 5)
        s0, s1 = to_epoch(morning.start), to_epoch(morning.end)
        spo2_t = np.arange(s0 + int(s_rng.integers(1, 60)), s1, 60)
        lv = morning.level_at(spo2_t)
        spo2_t = spo2_t[(lv > 0) & (s_rng.random(spo2_t.size) > 0.2)]
        base_spo2 = 95.5 + (user.seed or 0) % 30 / 10
        spo2_v = np.clip(np.round(base_spo2 + s_rng.normal(0, 0.9, spo2_t.size), 1), 88.0, 100.0)
        spo2 = tuple(SpO2Sample(from_epoch(t), float(v)) for t, v in zip(spo2_t.tolist(), spo2_v.tolist()))
        base_rmssd = 22 + (user.seed or 0) % 40
        hrv_t = np.arange((s0 + 299) // 300 * 300, s1 - 300, 300)
        hrv_t = hrv_t[morning.level_at(hrv_t + 150) > 0]
        hrv = tuple(
            HrvWindow(
                from_epoch(t),
                round(float(max(5.0, base_rmssd + s_rng.normal(0, 6))), 3),
                round(float(s_rng.uniform(0.75, 1.0)), 3),
                round(float(s_rng.uniform(80, 800)), 3),
                round(float(s_rng.uniform(150, 1300)), 3),
            )
            for t in hrv_t.tolist()
        )
        full = round(13.0 + (user.seed or 0) % 40 / 10 + s_rng.normal(0, 0.4), 1)
        has_rem = any(s.level == "rem" for s in morning.stages) and s_rng.random() > 0.1
        breathing = BreathingRate(
            full=full,
            deep=round(full - 0.8, 1),
            light=round(full + 0.2, 1),
            rem=round(full + 0.9, 1) if has_rem else None,
        )
        return SimDay(
            user_id=user.user_id,
            date=day,
            time_zone=user.time_zone,
            start=start_dt,
            end=end_dt,
            hr_times=times,
            hr_bpm=hr_bpm,
            minute_starts=minute_starts,
            steps=steps,
            calories=calories,
            distance_m=distance_m,
            floors=floors,
            intensity=intensity,
            azm=azm,
            hr_zone=hr_zone,
            worn=worn,
            sleep=morning,
            spo2=spo2,
            hrv=hrv,
            breathing=breathing,
            resting_hr=int(round(rhr_day)),
            long_off_wrist=bool(long_off),
        )


@dataclass
class Concatenated:
    """Several days' arrays joined and clipped to a UTC span (what range queries need)."""

    hr_times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hr_bpm: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    minute_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    calories: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distance_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    floors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    intensity: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    azm: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    hr_zone: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    worn: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


MINUTE_FIELDS = ("steps", "calories", "distance_m", "floors", "intensity", "azm", "hr_zone", "worn")


def concatenate(days: Sequence[SimDay], start: int, end: int) -> Concatenated:
    """Join ``days`` (consecutive) and keep samples/minutes starting in ``[start, end)``."""
    if not days:
        return Concatenated()
    hr_t = np.concatenate([d.hr_times for d in days])
    hr_b = np.concatenate([d.hr_bpm for d in days])
    keep = (hr_t >= start) & (hr_t < end)
    m_t = np.concatenate([d.minute_starts for d in days])
    m_keep = (m_t >= start) & (m_t < end)
    out = Concatenated(hr_times=hr_t[keep], hr_bpm=hr_b[keep], minute_starts=m_t[m_keep])
    for name in MINUTE_FIELDS:
        setattr(out, name, np.concatenate([getattr(d, name) for d in days])[m_keep])
    return out
