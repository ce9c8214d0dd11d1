"""The synthetic cohort itself: determinism, civil days across DST, sync truncation, density."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfoNotFoundError

import numpy as np
import pytest

from wearable_assets import settings
from wearable_assets.roster import load_roster
from wearable_assets_dev.simulators.cohort import (
    SimUser,
    SyntheticCohort,
    device_offsets,
    local_midnight_utc,
    offset_table,
    to_epoch,
)


def test_same_day_is_identical_in_any_order_and_any_instance() -> None:
    users = [SimUser("A", "America/New_York", seed=1), SimUser("B", "Asia/Tokyo")]
    one, two = SyntheticCohort(users), SyntheticCohort(users)
    d = date(2026, 11, 3)
    first = one.day("A", d)
    two.day("A", d + timedelta(days=5))
    two.day("B", d)
    second = two.day("A", d)
    assert np.array_equal(first.hr_times, second.hr_times) and np.array_equal(first.hr_bpm, second.hr_bpm)
    assert np.array_equal(first.steps, second.steps) and first.sleep == second.sleep
    assert first.spo2 == second.spo2 and first.hrv == second.hrv
    assert not np.array_equal(one.day("A", d).steps, one.day("A", d + timedelta(days=1)).steps[: first.steps.size])


def test_civil_days_follow_the_zone_including_dst() -> None:
    cohort = SyntheticCohort([SimUser("NY", "America/New_York", seed=5), SimUser("BNE", "Australia/Brisbane", seed=6)])
    for user_id, d, hours in [("NY", date(2026, 11, 1), 25), ("NY", date(2026, 3, 8), 23), ("BNE", date(2026, 11, 1), 24)]:
        day = cohort.day(user_id, d)
        assert day.hours == hours and day.minute_starts.size == hours * 60
        assert day.start == local_midnight_utc(d, cohort.user(user_id).tz)
        assert to_epoch(day.start) <= day.hr_times.min() and day.hr_times.max() < to_epoch(day.end)
        assert np.all(np.diff(day.hr_times) > 0)
        assert day.steps[~day.worn].sum() == 0


def test_realistic_density_and_dense_mode() -> None:
    users = [SimUser("U", "Europe/London", seed=9)]
    week = [SyntheticCohort(users).day("U", date(2026, 11, 10) + timedelta(days=i)) for i in range(7)]
    day = week[0]
    assert all(12_000 <= d.hr_times.size <= 25_000 for d in week)
    assert np.median(np.diff(day.hr_times)) <= 5  # seconds apart, irregular
    assert len({int(g) for g in np.diff(day.hr_times)}) >= 5
    assert any(np.diff(d.hr_times).max() > 600 for d in week)  # off-wrist holes on some days
    asleep = day.sleep.level_at(day.minute_starts + 30) >= 0
    assert day.steps[asleep].sum() == 0 and day.steps.sum() > 1000
    dense = SyntheticCohort(users, hr_interval_s=1.0).day("U", date(2026, 11, 10))
    assert dense.hr_times.size == 86_400


def test_sleep_spans_the_evening_before_and_has_stages() -> None:
    cohort = SyntheticCohort([SimUser("S", "America/Los_Angeles", seed=3)])
    d = date(2026, 11, 12)
    sleep = cohort.sleep("S", d)
    tz = cohort.user("S").tz
    assert sleep.end.astimezone(tz).date() == d and sleep.start.astimezone(tz).hour in (20, 21, 22, 23, 0, 1)
    assert {s.level for s in sleep.stages} == {"wake", "light", "deep", "rem"}
    assert all(s.seconds % 30 == 0 for s in sleep.stages + sleep.short_wakes)
    for a, b in zip(sleep.stages, sleep.stages[1:]):
        assert a.end == b.start
    previous_evening = cohort.day("S", d - timedelta(days=1))
    in_bed = (previous_evening.minute_starts >= to_epoch(sleep.start))
    assert in_bed.any() and previous_evening.steps[in_bed].sum() == 0


def test_sync_lag_truncates_and_the_clock_grows_the_day() -> None:
    d = date(2026, 11, 10)
    user = SimUser("L", "America/New_York", seed=8, sync_lag=timedelta(hours=2))
    cohort = SyntheticCohort([user], now=local_midnight_utc(d, user.tz) + timedelta(hours=12))
    partial = cohort.synced_day("L", d)
    assert partial.synced_until == cohort.now - timedelta(hours=2)
    assert partial.hr_times.max() < to_epoch(partial.synced_until)
    assert partial.resting_hr is not None  # last night has synced
    cohort.advance(timedelta(hours=14))
    full = cohort.synced_day("L", d)
    assert partial.hr_times.size < full.hr_times.size == cohort.day("L", d).hr_times.size
    cohort.set_last_sync("L", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert cohort.synced_day("L", d).hr_times.size == 0 and cohort.synced_day("L", d).sleep is None


def test_long_off_wrist_days_and_the_demo_roster() -> None:
    user = SimUser("O", "Asia/Tokyo", seed=4, off_wrist_days=frozenset({date(2026, 11, 5)}))
    day = SyntheticCohort([user]).day("O", date(2026, 11, 5))
    assert day.long_off_wrist and day.worn.sum() < 12 * 60
    demo = SyntheticCohort.demo()
    roster = {p.fitbit_user_id: p for p in load_roster(settings.roster_path()) if p.fitbit_user_id}
    assert set(demo.users) == set(roster)
    assert all(demo.user(uid).time_zone == p.time_zone for uid, p in roster.items())
    assert demo.user("P004").sync_lag == timedelta(hours=36) and demo.user("P001").sync_lag == timedelta(minutes=20)
    november = [demo.day("P004", date(2026, 11, 1) + timedelta(days=i)) for i in range(30)]
    assert 0 < sum(d.long_off_wrist for d in november) < 15


def test_travel_moves_the_device_offsets_not_the_recorded_data() -> None:
    """A trip New York -> London -> New York changes the offsets at exactly the two instants and
    nothing the device recorded. New York's DST change falls during the trip: the device, in
    London then, never shows EDT -> EST itself, but comes home to EST."""
    out, back = datetime(2026, 10, 30, 3, 0, tzinfo=timezone.utc), datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)
    home = SimUser("NY", "America/New_York", seed=5)
    trip = SimUser("NY", "America/New_York", seed=5, travel=((out, "Europe/London"), (back, "America/New_York")))
    a, b = to_epoch(datetime(2026, 10, 28, tzinfo=timezone.utc)), to_epoch(datetime(2026, 11, 6, tzinfo=timezone.utc))
    t = np.arange(a, b, 60)
    got = device_offsets(trip, a, b).at(t)
    expected = np.array([int(datetime.fromtimestamp(int(x), timezone.utc).astimezone(trip.zone_at(
        datetime.fromtimestamp(int(x), timezone.utc))).utcoffset().total_seconds()) for x in t])
    assert np.array_equal(got, expected)
    assert set(got.tolist()) == {-4 * 3600, 0, -5 * 3600}  # EDT, GMT (London left BST on Oct 25), EST
    assert np.array_equal(device_offsets(home, a, b).at(t), offset_table(home.tz, a, b).at(t))
    assert str(trip.zone_at(out - timedelta(seconds=1))) == "America/New_York" and str(trip.zone_at(out)) == "Europe/London"
    d = date(2026, 10, 31)
    assert np.array_equal(SyntheticCohort([trip]).day("NY", d).hr_times, SyntheticCohort([home]).day("NY", d).hr_times)


def test_travel_must_be_aware_and_in_order() -> None:
    at = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimUser("A", "America/New_York", travel=((at.replace(tzinfo=None), "Europe/London"),))
    with pytest.raises(ValueError, match="increasing"):
        SimUser("A", "America/New_York", travel=((at, "Europe/London"), (at, "Asia/Tokyo")))
    with pytest.raises(ZoneInfoNotFoundError):
        SimUser("A", "America/New_York", travel=((at, "Mars/Olympus"),))
