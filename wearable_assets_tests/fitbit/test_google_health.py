"""Google Health adapter against the loopback simulator and the real TimescaleDB.

Expected values come from the simulator's cohort (what the device "recorded"), never from the
code under test, so a parser or windowing bug shows up as a count mismatch.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import orjson
import pytest

from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.fitbit.canonical import DayWindow, ParsedDay, Payload, stream_batches
from wearable_assets.fitbit.google_health import parse as google_health_parse
from wearable_assets.fitbit.google_health.helpers import Request
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.common import Fault, PerKeyLimits
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

from .conftest import DAY, NOW, enrol_directly, google_resource

HR_PATH = "/v4/users/me/dataTypes/heart-rate/dataPoints"
STEPS_PATH = "/v4/users/me/dataTypes/steps/dataPoints"


def fetch_and_load(google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource, pid: str,
                   day: date) -> tuple[ingest.DayOutcome, ingest.DayOutcome]:
    pday = ParticipantDay(day, pid)
    participant = participant_store.load(db, [pid])[pid]
    landed = landing.land_day(pday, participant, google.client(pid, db), lake, db)
    if landed.status != "ok":
        return landed, landed
    return landed, ingest.load_timescale(db, lake, pday)


def counts_by_metric(db: TimescaleResource, pid: str) -> dict[str, int]:
    return dict(db.fetch("SELECT metric, count(*) FROM wearables.fitbit_intraday WHERE participant_id = %s "
                         "GROUP BY 1", (pid,)))


def test_happy_path_matches_what_the_device_recorded(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                                     google_store: TokenStore, db: TimescaleResource,
                                                     lake: LakeResource, cohort: SyntheticCohort) -> None:
    enrol_directly(google_sim, google_store, "P001")
    landed, loaded = fetch_and_load(google, db, lake, "P001", DAY)
    assert landed.status == "ok" and loaded.status == "ok"

    truth = cohort.synced_day("P001", DAY)
    worn = int(truth.worn.sum())
    counts = counts_by_metric(db, "P001")
    assert counts["heart_rate"] == truth.hr_times.size
    assert counts["steps"] == counts["distance"] == counts["floors"] == counts["calories"] == worn
    assert counts.get("active_zone_minutes", 0) == int((truth.azm[truth.worn] > 0).sum())
    # Night samples belong to the civil day they were taken on: last night's after midnight and
    # tonight's before it (tonight's sleep is the next day's session).
    nights = truth.spo2 + cohort.synced_day("P001", DAY + timedelta(days=1)).spo2
    assert counts["spo2"] == sum(1 for s in nights if truth.start <= s.at < truth.end)
    assert counts["resting_heart_rate"] == 1 and counts["breathing_rate"] == 1

    (steps, metres, kcal, floors), = db.fetch(
        "SELECT sum(value) FILTER (WHERE metric = 'steps'), sum(value) FILTER (WHERE metric = 'distance'), "
        "sum(value) FILTER (WHERE metric = 'calories'), sum(value) FILTER (WHERE metric = 'floors') "
        "FROM wearables.fitbit_intraday")
    assert steps == int(truth.steps[truth.worn].sum())
    assert metres == pytest.approx(float(truth.distance_m[truth.worn].sum()), abs=0.01)  # mm -> m
    assert kcal == pytest.approx(float(truth.calories[truth.worn].sum()), abs=0.0005 * worn)  # 3-decimal kcalSum
    assert floors == int(truth.floors[truth.worn].sum())
    # Floors and calories cannot be listed: one 60 s rollUp each, a row per worn minute, stamped at
    # the minute's start (the same rows steps has), with no dataSource to keep. The second rollUp
    # is the day's total (one window over the participant-day); the civil dailyRollUp is not used.
    floors_path = "/v4/users/me/dataTypes/floors/dataPoints"
    assert google_sim.state.count_calls(floors_path + ":rollUp", "POST") == 2
    assert google_sim.state.count_calls("/v4/users/me/dataTypes/", "POST") == 6  # 2 minute + 4 day totals
    assert google_sim.state.count_calls(floors_path + ":dailyRollUp") == 0
    assert google_sim.state.count_calls(floors_path, "GET") == 0
    minutes = "SELECT array_agg(ts ORDER BY ts) FROM wearables.fitbit_intraday WHERE metric = %s"
    assert db.fetch(minutes, ("floors",)) == db.fetch(minutes, ("steps",))
    assert db.fetch("SELECT DISTINCT metric, device, utc_offset_min FROM wearables.fitbit_intraday "
                    "WHERE metric IN ('floors', 'calories') ORDER BY 1") == [("calories", None, -300),
                                                                             ("floors", None, -300)]
    # int64-as-string values came through as numbers; dataSource is kept as provenance.
    assert db.fetch("SELECT DISTINCT device, source, utc_offset_min FROM wearables.fitbit_intraday "
                    "WHERE metric = 'heart_rate'") == [("FITBIT:Charge 6", "google_health", -300)]

    sleep = truth.sleep
    assert sleep is not None
    stages = db.fetch("SELECT sleep_date, stage, is_short, min(start_ts), max(end_ts), count(*) "
                      "FROM wearables.fitbit_sleep_stages GROUP BY 1, 2, 3")
    assert {r[0] for r in stages} == {DAY}  # attributed to the wake date
    assert sum(r[5] for r in stages if not r[2]) == len(sleep.stages)
    assert sum(r[5] for r in stages if r[2]) == len(sleep.short_wakes)
    assert min(r[3] for r in stages) == sleep.start and max(r[4] for r in stages) == sleep.end

    status = db.fetch("SELECT status, rows_loaded, api_calls, last_device_sync FROM wearables.ingest_status")
    assert status == [("ok", sum(counts.values()) + len(sleep.stages) + len(sleep.short_wakes),
                       landed.api_calls, cohort.last_sync("P001").replace(microsecond=0))]
    assert landed.api_calls == google_sim.state.count_calls("/v4/")


def test_pagination_follows_short_and_empty_pages(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                                  google_store: TokenStore, db: TimescaleResource,
                                                  lake: LakeResource, cohort: SyntheticCohort) -> None:
    enrol_directly(google_sim, google_store, "P001")
    google_sim.state.empty_page_every = 3  # every third page is empty but carries a token
    small = google_resource(google_sim, google.token_key, page_size=700)
    landed, loaded = fetch_and_load(small, db, lake, "P001", DAY)
    assert loaded.status == "ok"
    manifest = fitbit_manifest.read_manifest(lake, ParticipantDay(DAY, "P001"))
    assert manifest is not None
    hr_pages = [n for n in manifest["payloads"] if n.startswith("heart-rate.list.")]
    truth = cohort.synced_day("P001", DAY)
    assert len(hr_pages) > truth.hr_times.size // 700  # short pages mean more pages than size/pageSize
    empty = [n for n in hr_pages if "dataPoints" not in json.loads(
        fitbit_manifest.read_landed(lake, ParticipantDay(DAY, "P001"), manifest, n))]
    assert empty, "the simulator should have served at least one empty page with a token"
    assert counts_by_metric(db, "P001")["heart_rate"] == truth.hr_times.size
    assert google_sim.state.count_calls(HR_PATH) == len(hr_pages)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 11, 1), 25), (date(2026, 3, 8), 23), (DAY, 24)])
def test_dst_days_have_exact_hour_counts(roster, google_store: TokenStore, db: TimescaleResource, lake: LakeResource,
                                         token_key: str, day: date, hours: int) -> None:
    # A fixed 60 s heart-rate grid without off-wrist gaps makes the expected counts exact.
    cohort = SyntheticCohort.from_roster(roster, now=NOW, hr_interval_s=60)
    with GoogleHealthSimulator(cohort) as sim:
        google = google_resource(sim, token_key)
        enrol_directly(sim, google_store, "P001")
        _, loaded = fetch_and_load(google, db, lake, "P001", day)
    window = DayWindow.of(day, "America/New_York")
    assert window.minutes == hours * 60
    per_hour = db.fetch("SELECT date_trunc('hour', ts), count(*) FROM wearables.fitbit_intraday "
                        "WHERE metric = 'heart_rate' GROUP BY 1 ORDER BY 1")
    assert len(per_hour) == hours and {n for _, n in per_hour} == {60}
    assert per_hour[0][0] == window.start and per_hour[-1][0] == window.end - timedelta(hours=1)
    (outside,) = db.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE ts < %s OR ts >= %s",
                          (window.start, window.end))[0]
    assert outside == 0
    assert loaded.hr_completeness_pct == 100.0
    offsets = {r[0] for r in db.fetch("SELECT DISTINCT utc_offset_min FROM wearables.fitbit_intraday")}
    assert offsets == ({-240, -300} if hours != 24 else {-300})


@pytest.mark.parametrize(("pid", "offset_min"), [("P002", 600), ("P004", -480)])
def test_east_and_west_of_utc(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                              google_store: TokenStore, db: TimescaleResource, lake: LakeResource,
                              cohort: SyntheticCohort, pid: str, offset_min: int) -> None:
    enrol_directly(google_sim, google_store, pid)
    _, loaded = fetch_and_load(google, db, lake, pid, DAY)
    assert loaded.status == "ok"
    truth = cohort.synced_day(pid, DAY)
    window = DayWindow.of(DAY, truth.time_zone)
    # Brisbane's day starts the previous UTC afternoon, Los Angeles' at 08:00 UTC.
    assert window.start == datetime.combine(DAY, datetime.min.time(), timezone.utc) - timedelta(minutes=offset_min)
    (lo, hi, n, offsets), = db.fetch("SELECT min(ts), max(ts), count(*), array_agg(DISTINCT utc_offset_min) "
                                     "FROM wearables.fitbit_intraday WHERE metric = 'heart_rate'")
    assert window.start <= lo and hi < window.end and n == truth.hr_times.size and offsets == [offset_min]
    (wake,), = db.fetch("SELECT max(end_ts) FROM wearables.fitbit_sleep_stages")
    assert wake.astimezone(window.tz).date() == DAY


def test_rerun_replaces_the_day_in_both_destinations(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                                     google_store: TokenStore, db: TimescaleResource,
                                                     lake: LakeResource, cohort: SyntheticCohort) -> None:
    enrol_directly(google_sim, google_store, "P001")
    today = date(2026, 11, 24)
    cohort.set_last_sync("P001", datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc))  # mid-afternoon in New York
    pday = ParticipantDay(today, "P001")
    fetch_and_load(google, db, lake, "P001", today)
    ingest.load_lake(db, lake, pday)
    first = counts_by_metric(db, "P001")

    cohort.set_last_sync("P001", None)  # the device synced the rest of the day: the day grows
    fetch_and_load(google, db, lake, "P001", today)
    ingest.load_lake(db, lake, pday)
    ingest.load_timescale(db, lake, pday)  # and re-loading the same payloads changes nothing
    ingest.load_lake(db, lake, pday)
    second = counts_by_metric(db, "P001")
    truth = cohort.synced_day("P001", today)
    assert first["heart_rate"] < second["heart_rate"] == truth.hr_times.size
    (dupes,), = db.fetch("SELECT count(*) - count(DISTINCT (metric, ts)) FROM wearables.fitbit_intraday")
    assert dupes == 0

    files = sorted(p.name for p in Path(lake.partition_prefix("fitbit_intraday", "P001", today)).glob("*.parquet"))
    assert len({name.split(".")[0] for name in files}) == 1  # one load's files, older loads removed
    lake_counts = dict(duckdb.sql(
        f"SELECT metric, count(*) FROM read_parquet('{lake.table_glob('fitbit_intraday')}', hive_partitioning=true) "
        "GROUP BY 1").fetchall())
    assert lake_counts == second
    (sleep_rows,), = db.fetch("SELECT count(*) FROM wearables.fitbit_sleep_stages")
    (lake_sleep,) = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake.table_glob('fitbit_sleep_stages')}')").fetchone()
    assert lake_sleep == sleep_rows > 0


def test_5xx_and_timeouts_are_retried(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                      google_store: TokenStore, db: TimescaleResource, lake: LakeResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    google_sim.state.inject(Fault(HR_PATH, kind="status", status=503, count=2))
    google_sim.state.inject(Fault(STEPS_PATH, kind="timeout", delay_s=1.5))
    quick = google_resource(google_sim, google.token_key, timeout_s=0.5)
    landed, loaded = fetch_and_load(quick, db, lake, "P001", DAY)
    assert loaded.status == "ok"
    statuses = Counter((c.path, c.status) for c in google_sim.state.calls)
    assert statuses[(HR_PATH, 503)] == 2
    assert google_sim.state.count_calls(STEPS_PATH) >= 2  # the timed-out call was sent again


def test_429_waits_as_the_server_asks(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                      google_store: TokenStore, db: TimescaleResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    client = google.client("P001", db)
    retry_info = json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down",
                                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                    "retryDelay": "1.5s"}]}})
    google_sim.state.inject(Fault(STEPS_PATH, kind="status", status=429, body=retry_info))
    pages = list(client.pages(Request("steps", "list", "interval"), DayWindow.of(DAY, "America/New_York"),
                              lambda name, body: "memory"))
    assert pages and pages[0]["dataPoints"]
    steps_calls = [c for c in google_sim.state.calls if c.path == STEPS_PATH]
    assert [c.status for c in steps_calls[:2]] == [429, 200]
    assert steps_calls[1].at - steps_calls[0].at >= 1.5  # honoured RetryInfo, no early retry

    # The simulator's own per-user budget: 429 + Retry-After (whole seconds) once it is spent.
    google_sim.state.rate_limits = PerKeyLimits(300, window_s=2)  # 2 s windows keep the test short
    google_sim.state.rate_limits.set("P001", 3)
    google_sim.state.reset_calls()
    waits_before = client.session.rate_limited_waits
    for _ in range(7):
        client.call("GET", "users/me/pairedDevices", what="devices")
    calls = google_sim.state.calls
    limited = [i for i, c in enumerate(calls) if c.status == 429]
    assert limited, "a budget of 3 calls per 2 s must have been hit"
    assert sum(c.status == 200 for c in calls) == 7
    for i in limited:
        assert calls[i + 1].at - calls[i].at >= 0.9  # waited for the window to reset
    assert client.session.rate_limited_waits - waits_before == len(limited)


def test_malformed_payload_is_kept_and_nothing_is_half_written(google: GoogleHealthResource,
                                                               google_sim: GoogleHealthSimulator,
                                                               google_store: TokenStore, db: TimescaleResource,
                                                               lake: LakeResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    pday = ParticipantDay(DAY, "P001")
    fetch_and_load(google, db, lake, "P001", DAY)
    before = counts_by_metric(db, "P001")

    # A landed payload that is valid JSON but not the documented shape fails before any write.
    manifest = fitbit_manifest.read_manifest(lake, pday)
    assert manifest is not None
    stored = fitbit_manifest.stored_name(manifest, "steps.list.p000")
    good = lake.read_raw("fitbit", "P001", DAY, stored)
    page = json.loads(good)
    del page["dataPoints"][3]["steps"]["count"]
    lake.land_raw("fitbit", "P001", DAY, stored, page)
    with pytest.raises(ValueError, match=r"steps\.list\.p000: data point 3 .*'steps'"):
        ingest.load_timescale(db, lake, pday)
    assert counts_by_metric(db, "P001") == before
    lake.land_raw("fitbit", "P001", DAY, stored, good)

    # A body that is not JSON at all: kept as received, the fetch reports it, nothing is loaded,
    # and the previous good fetch is still there, byte for byte, as the manifest's last_ok.
    google_sim.state.inject(Fault(STEPS_PATH, kind="malformed"))
    landed, _ = fetch_and_load(google, db, lake, "P001", DAY)
    assert landed.status == "api_error"
    assert "steps.list" in landed.detail and "not valid JSON" in landed.detail and "kept at" in landed.detail
    failed = fitbit_manifest.read_manifest(lake, pday)
    assert failed is not None and failed["status"] == "api_error" and failed["fetch"] != manifest["fetch"]
    assert fitbit_manifest.read_landed(lake, pday, failed, "steps.list.p000").startswith(b'{"dataPoints": [{"trunc')
    assert failed["last_ok"]["fetch"] == manifest["fetch"]
    assert all(fitbit_manifest.read_landed(lake, pday, failed["last_ok"], n) for n in manifest["payloads"])
    assert fitbit_manifest.read_landed(lake, pday, failed["last_ok"], "steps.list.p000") == good
    assert ingest.load_timescale(db, lake, pday).status == "api_error"  # the manifest says so: no load
    assert counts_by_metric(db, "P001") == before  # the earlier load is untouched

    # The next good fetch supersedes both earlier fetches: only it and the manifest remain.
    landed, loaded = fetch_and_load(google, db, lake, "P001", DAY)
    assert landed.status == loaded.status == "ok"
    current = fitbit_manifest.read_manifest(lake, pday)
    assert current is not None and "last_ok" not in current
    assert lake.list_raw("fitbit", "P001", DAY) == sorted(
        [fitbit_manifest.MANIFEST] + [fitbit_manifest.stored_name(current, n) for n in current["payloads"]])
    assert counts_by_metric(db, "P001") == before


def test_floors_read_by_rollup_load_as_the_earlier_list_payloads_did() -> None:
    """Days landed before floors moved to rollUp hold ``floors.list`` pages; both forms make the
    same rows (a DST day, with true zeros), except for ``device``: rollUp windows carry no
    ``dataSource``."""
    window = DayWindow.of(date(2026, 11, 1), "America/New_York")  # 25 hours, offsets -240 then -300
    minutes = [window.start + timedelta(minutes=m) for m in range(0, window.minutes, 7)]
    offset = {True: "-14400s", False: "-18000s"}

    def stamp(ts: datetime) -> str:
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")

    listed = {"dataPoints": [
        {"dataSource": {"platform": "FITBIT", "device": {"displayName": "Charge 6"}},
         "floors": {"count": str(i % 3), "interval": {
             "startTime": stamp(ts), "startUtcOffset": offset[ts < datetime(2026, 11, 1, 6, tzinfo=timezone.utc)],
             "endTime": stamp(ts + timedelta(minutes=1))}}}
        for i, ts in reversed(list(enumerate(minutes)))]}  # newest first, as list serves them
    rolled = {"rollupDataPoints": [
        {"startTime": stamp(ts), "endTime": stamp(ts + timedelta(minutes=1)), "floors": {"countSum": str(i % 3)}}
        for i, ts in enumerate(minutes)]}

    def rows(name: str, document: dict) -> list[tuple]:
        day = ParsedDay(window=window, participant_id="P001", source="google_health")
        payloads = [Payload(name, orjson.dumps(document), orjson.loads)]
        return sorted(row for batch in stream_batches(day, google_health_parse.parse_payload, payloads)
                      for row in batch.rows(day.participant_id, day.source))

    old, new = rows("floors.list.p000", listed), rows("floors.rollUp.p000", rolled)
    assert len(new) == len(minutes) and {row[3] for row in new} == {0.0, 1.0, 2.0}
    assert [row[:6] for row in old] == [row[:6] for row in new]
    assert {row[4] for row in new} == {-240, -300}
    assert {row[6] for row in old} == {"FITBIT:Charge 6"} and {row[6] for row in new} == {None}
