"""Travel: a device whose time zone differs from the roster's, and changes, loses nothing.

The rule under test: the roster zone owns the participant-day (``DayWindow``), and the Google
Health adapter fetches that UTC interval with physical-time filters. Consecutive participant-days
tile time, so every sample the device recorded must be stored exactly once, in the participant-day
whose window holds it, whatever zone the device was in. The truth is the simulator's cohort (what
the device recorded, instant by instant); the simulator stamps points with the DEVICE's offsets
and answers civil filters and ``dailyRollUp`` by the device's civil days, as the API does.

Each scenario is a trip whose zone change crosses local midnight on the device's clock:
eastward, the device's clock jumps forward over midnight (a short civil day); westward, it jumps
back over midnight (a civil date that occurs twice, in two separate stretches of time).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import duckdb
import numpy as np
import pytest
import requests

from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.roster import Participant
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.cohort import (
    SyntheticCohort,
    concatenate,
    device_offsets,
    to_epoch,
)
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

from .conftest import NOW, enrol_directly, google_resource

UTC = timezone.utc

#: (participant, trip as device-zone changes): New York -> London -> New York, and
#: Brisbane -> Los Angeles -> Brisbane. Every change crosses midnight on the device's clock.
TRIPS = {
    "P001": (  # roster America/New_York
        (datetime(2026, 11, 10, 3, 0, tzinfo=UTC), "Europe/London"),  # NY 22:00 Nov 9 -> London 03:00 Nov 10
        (datetime(2026, 11, 13, 1, 0, tzinfo=UTC), "America/New_York"),  # London 01:00 Nov 13 -> NY 20:00 Nov 12
    ),
    "P002": (  # roster Australia/Brisbane
        (datetime(2026, 11, 10, 15, 0, tzinfo=UTC), "America/Los_Angeles"),  # BNE 01:00 Nov 11 -> LA 07:00 Nov 10
        (datetime(2026, 11, 13, 6, 0, tzinfo=UTC), "Australia/Brisbane"),  # LA 22:00 Nov 12 -> BNE 16:00 Nov 13
    ),
}

#: (participant, direction of the zone change, first participant-day, number of days).
SCENARIOS = [
    pytest.param("P001", "east", date(2026, 11, 8), 4, id="new_york-to-london-east"),
    pytest.param("P001", "west", date(2026, 11, 11), 4, id="london-to-new_york-west"),
    pytest.param("P002", "west", date(2026, 11, 9), 4, id="brisbane-to-los_angeles-west"),
    pytest.param("P002", "east", date(2026, 11, 12), 3, id="los_angeles-to-brisbane-east"),
]


@pytest.fixture
def travel_cohort(roster: list[Participant]) -> SyntheticCohort:
    return SyntheticCohort.from_roster(roster, now=NOW, traits={pid: {"travel": trip} for pid, trip in TRIPS.items()})


def _zone_of(roster: list[Participant], pid: str) -> str:
    return next(p.time_zone for p in roster if p.participant_id == pid)


def _crossing(pid: str, direction: str) -> datetime:
    """The trip's zone change in ``direction`` (checked: it crosses the device's local midnight)."""
    (out_at, _), (back_at, _) = TRIPS[pid]
    return out_at if (direction == "east") == (pid == "P001") else back_at


@pytest.mark.parametrize(("pid", "direction", "first", "n_days"), SCENARIOS)
def test_every_sample_lands_in_exactly_one_participant_day(
        pid: str, direction: str, first: date, n_days: int, roster: list[Participant], travel_cohort: SyntheticCohort,
        db: TimescaleResource, lake: LakeResource, token_key: str) -> None:
    zone = _zone_of(roster, pid)
    days = [first + timedelta(days=i) for i in range(n_days)]
    windows = [DayWindow.of(d, zone) for d in days]
    lo, hi = windows[0].start, windows[-1].end
    user = travel_cohort.user(pid)
    change = _crossing(pid, direction)
    assert lo < change < hi
    before, after = user.zone_at(change - timedelta(seconds=1)), user.zone_at(change)
    jump = (change.astimezone(after).replace(tzinfo=None) - change.astimezone(before).replace(tzinfo=None))
    assert (jump > timedelta(0)) == (direction == "east")
    assert change.astimezone(after).date() != change.astimezone(before).date()  # over local midnight

    with GoogleHealthSimulator(travel_cohort) as sim:
        google = google_resource(sim, token_key)
        store = google.token_store(db)
        enrol_directly(sim, store, pid)
        participant = participant_store.load(db, [pid])[pid]
        outcomes = {}
        for d in days:
            pday = ParticipantDay(d, pid)
            landed = landing.land_day(pday, participant, google.client(pid, db), lake, db)
            assert landed.status == "ok", landed.detail
            outcomes[d] = ingest.load_timescale(db, lake, pday)
            ingest.load_lake(db, lake, pday)
            assert fitbit_manifest.read_manifest(lake, pday)["time_zone"] == zone

    # The truth: everything the device recorded in [lo, hi), and the device's offset at each instant.
    a, b = to_epoch(lo), to_epoch(hi)
    truth = concatenate(travel_cohort.synced_days(pid, lo, hi), a, b)
    offsets = device_offsets(user, a - 86400, b + 86400)
    worn = truth.minute_starts[truth.worn]
    assert np.unique(offsets.at(truth.hr_times)).size == 2  # the device really changed zone in the span

    # Nothing was dropped or left to another day's fetch, and no day claimed another's samples.
    for d, outcome in outcomes.items():
        assert outcome.status == "ok"
        assert not [k for k in outcome.dropped if k.endswith(":outside_day")], (d, outcome.dropped)
    stored = {
        metric: db.fetch("SELECT extract(epoch FROM ts)::bigint, value, utc_offset_min FROM wearables.fitbit_intraday "
                         "WHERE participant_id = %s AND metric = %s ORDER BY ts", (pid, metric))
        for metric in ("heart_rate", "steps", "calories", "floors", "spo2")
    }
    hr = np.array([r[0] for r in stored["heart_rate"]], dtype=np.int64)
    assert np.array_equal(hr, truth.hr_times)  # the union, none lost, none twice
    assert [r[2] for r in stored["heart_rate"]] == (offsets.at(truth.hr_times) // 60).tolist()  # device's offsets
    for metric in ("steps", "calories", "floors"):
        assert np.array_equal(np.array([r[0] for r in stored[metric]], dtype=np.int64), worn), metric
    assert sum(r[1] for r in stored["steps"]) == int(truth.steps[truth.worn].sum())
    nights = {s.at for d in travel_cohort.local_dates(pid, lo - timedelta(days=1), hi + timedelta(days=1))
              for s in travel_cohort.synced_day(pid, d).spo2 if lo <= s.at < hi}
    assert sorted(datetime.fromtimestamp(r[0], UTC) for r in stored["spo2"]) == sorted(nights)

    # Each participant-day holds exactly the samples of its own window (and says so in its outcome).
    for d, window in zip(days, windows):
        inside = (truth.hr_times >= to_epoch(window.start)) & (truth.hr_times < to_epoch(window.end))
        assert outcomes[d].rows_per_metric["heart_rate"] == int(inside.sum())
        in_day = (worn >= to_epoch(window.start)) & (worn < to_epoch(window.end))
        assert outcomes[d].rows_per_metric["steps"] == int(in_day.sum())
    # The lake tags every row with its participant-day: one day per sample, the roster-local date.
    lake_rows = duckdb.sql(
        f"SELECT epoch(ts)::BIGINT AS t, local_date FROM read_parquet('{lake.table_glob('fitbit_intraday')}', "
        "hive_partitioning=true) WHERE metric = 'heart_rate' ORDER BY t").fetchall()
    assert [r[0] for r in lake_rows] == truth.hr_times.tolist()
    assert all(r[1] == datetime.fromtimestamp(r[0], UTC).astimezone(windows[0].tz).date() for r in lake_rows)

    # Sleep: each session once, on the participant-day in which it ends.
    sessions = {s.end: s for d in travel_cohort.local_dates(pid, lo - timedelta(days=1), hi + timedelta(days=1))
                if (s := travel_cohort.synced_day(pid, d).sleep) is not None and lo <= s.end < hi}
    sleep = db.fetch("SELECT sleep_date, max(end_ts), count(*) FROM wearables.fitbit_sleep_stages "
                     "WHERE participant_id = %s AND NOT is_short GROUP BY log_id, sleep_date ORDER BY 2", (pid,))
    assert [r[1] for r in sleep] == sorted(sessions)
    assert [r[0] for r in sleep] == [end.astimezone(windows[0].tz).date() for end in sorted(sessions)]
    assert [r[2] for r in sleep] == [len(sessions[end].stages) for end in sorted(sessions)]

    # The provider's total over each participant-day agrees with the stored minutes; the zone that
    # defined each day is queryable.
    status = db.fetch("SELECT local_date, time_zone, detail FROM wearables.ingest_status "
                      "WHERE participant_id = %s ORDER BY 1", (pid,))
    assert [(r[0], r[1]) for r in status] == [(d, zone) for d in days]
    for (d, _, detail), window in zip(status, windows):
        total = float(re.search(r"\bsteps=([0-9.e+]+)", detail).group(1))
        (stored_steps,), = db.fetch("SELECT coalesce(sum(value), 0) FROM wearables.fitbit_intraday "
                                    "WHERE participant_id = %s AND metric = 'steps' AND ts >= %s AND ts < %s",
                                    (pid, window.start, window.end))
        assert total == stored_steps, d


def test_device_civil_days_are_not_participant_days(roster: list[Participant], travel_cohort: SyntheticCohort,
                                                    db: TimescaleResource, token_key: str) -> None:
    """Why the adapter does not fetch by civil date: the simulator (like the API) answers civil
    filters and ``dailyRollUp`` by the DEVICE's civil day, which on a trip is not the roster's
    day, and on the westward change is not even one stretch of time."""
    pid, day = "P001", date(2026, 11, 12)  # the device returns from London at 01:00 London on Nov 13
    window = DayWindow.of(day, _zone_of(roster, pid))
    user = travel_cohort.user(pid)
    with GoogleHealthSimulator(travel_cohort) as sim:
        store = google_resource(sim, token_key).token_store(db)
        token = enrol_directly(sim, store, pid)[pid]["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        base = sim.base_url + "/users/me/dataTypes/steps/dataPoints"
        nxt = (day + timedelta(days=1)).isoformat()
        civil = requests.get(base, headers=auth, timeout=30, params={
            "filter": f'steps.interval.civil_start_time >= "{day}" AND steps.interval.civil_start_time < "{nxt}"',
            "pageSize": 10000}).json()["dataPoints"]
        daily = requests.post(base + ":dailyRollUp", headers=auth, timeout=30, json={
            "range": {"start": {"date": {"year": 2026, "month": 11, "day": 12}},
                      "end": {"date": {"year": 2026, "month": 11, "day": 13}}}, "windowSizeDays": 1}).json()
        physical = requests.post(base + ":rollUp", headers=auth, timeout=30, json={
            "range": {"startTime": window.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "endTime": window.end.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "windowSize": f"{int((window.end - window.start).total_seconds())}s"}).json()

    a, b = to_epoch(window.start - timedelta(days=1)), to_epoch(window.end + timedelta(days=1))
    truth = concatenate(travel_cohort.synced_days(pid, window.start - timedelta(days=1),
                                                  window.end + timedelta(days=1)), a, b)
    minutes, steps = truth.minute_starts[truth.worn], truth.steps[truth.worn]
    device_date = (minutes + device_offsets(user, a - 86400, b + 86400).at(minutes)) // 86400
    own = device_date == (day - date(1970, 1, 1)).days
    starts = sorted(datetime.fromisoformat(p["steps"]["interval"]["startTime"]) for p in civil)
    assert len(starts) == int(own.sum())
    assert starts[0] < window.start  # the device's Nov 12 began in London, five hours before New York's
    # Two stretches: London's Nov 12 up to its midnight, then (after London's first hour of Nov 13)
    # New York's Nov 12 evening again.
    london_midnight, home = datetime(2026, 11, 13, 0, 0, tzinfo=UTC), datetime(2026, 11, 13, 1, 0, tzinfo=UTC)
    assert not [t for t in starts if london_midnight <= t < home]
    assert [t for t in starts if t < london_midnight] and [t for t in starts if t >= home]
    assert int(daily["rollupDataPoints"][0]["steps"]["countSum"]) == int(steps[own].sum())
    in_window = (minutes >= to_epoch(window.start)) & (minutes < to_epoch(window.end))
    assert int(physical["rollupDataPoints"][0]["steps"]["countSum"]) == int(steps[in_window].sum())
    assert int(steps[own].sum()) != int(steps[in_window].sum())  # the two "days" disagree on a trip

