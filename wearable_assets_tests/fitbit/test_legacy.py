"""Legacy Fitbit Web API adapter: 410 Gone as today, and archived data while "working"."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pytest

from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.fitbit.assets import raw_payloads
from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.http import RateLimited
from wearable_assets.fitbit.resources import FitbitLegacyResource
from wearable_assets.oauth.errors import NeedsReconsent
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.common import PerKeyLimits
from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import partition_metadata

from .conftest import NOW, enrol_directly, google_resource, legacy_resource

ARCHIVED_DAY = date(2026, 10, 20)  # P003 (Europe/London) was enrolled until 2026-11-01
LONDON_DST_END = date(2026, 10, 25)


@pytest.fixture
def legacy_sim(cohort: SyntheticCohort) -> Iterator[FitbitLegacySimulator]:
    with FitbitLegacySimulator(cohort, mode="working") as sim:
        yield sim


@pytest.fixture
def legacy(legacy_sim: FitbitLegacySimulator, token_key: str) -> FitbitLegacyResource:
    return legacy_resource(legacy_sim, token_key)


@pytest.fixture
def legacy_store(legacy: FitbitLegacyResource, db: TimescaleResource) -> TokenStore:
    return legacy.token_store(db)


def enrol_legacy(sim: FitbitLegacySimulator, store: TokenStore, pid: str = "P003") -> dict:
    user = sim.cohort.user(pid)
    token = sim.state.issue_tokens(pid, user.legacy_user_id or pid)
    store.save(pid, "fitbit_legacy", token)
    return token


def land_and_load(legacy: FitbitLegacyResource, db: TimescaleResource, lake: LakeResource,
                  day: date, pid: str = "P003") -> tuple[ingest.DayOutcome, ingest.DayOutcome]:
    pday = ParticipantDay(day, pid)
    participant = participant_store.load(db, [pid])[pid]
    landed = landing.land_day(pday, participant, legacy.client(pid, db), lake, db)
    return landed, ingest.load_timescale(db, lake, pday)


@pytest.mark.parametrize("expired", [False, True], ids=["data-call", "token-refresh"])
def test_gone_means_reconsent_via_google_health(legacy_sim: FitbitLegacySimulator, legacy: FitbitLegacyResource,
                                               legacy_store: TokenStore, db: TimescaleResource, lake: LakeResource,
                                               expired: bool) -> None:
    token = enrol_legacy(legacy_sim, legacy_store)
    if expired:
        token["expires_in"] = 10  # the store refreshes first: the token endpoint answers 410 too
        legacy_store.save("P003", "fitbit_legacy", token)
    legacy_sim.set_mode("gone")
    landed, loaded = land_and_load(legacy, db, lake, ARCHIVED_DAY)
    assert landed.status == loaded.status == "needs_reconsent"
    assert "gone_410" in landed.detail
    assert "re-consent P003 via Google Health" in landed.detail
    assert "wearable-assets enroll --participant P003 --provider google_health" in landed.detail
    assert len(legacy_sim.state.calls) == 1  # one answer of 410 is enough: no retry loop
    status = legacy_store.status("P003", "fitbit_legacy")
    assert (status.auth_state, status.reason) == ("needs_reconsent", "gone_410")
    # land_day only reports; the asset records the status row (test_materialize_gone_legacy_...).
    assert db.fetch("SELECT status, source FROM wearables.ingest_status") == []


def test_materialize_gone_legacy_and_google_participant_on_one_day(
    cohort: SyntheticCohort, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, token_key: str, instance: dg.DagsterInstance,
) -> None:
    with FitbitLegacySimulator(cohort) as gone_sim:  # the default mode: 410 on every path, as today
        assert gone_sim.mode == "gone"
        legacy = legacy_resource(gone_sim, token_key)
        enrol_legacy(gone_sim, legacy.token_store(db), "P003")  # tokens from before the shutdown
        enrol_directly(google_sim, google_store, "P001")
        add_participants(instance, "P001", "P003")
        result = dg.materialize(
            [raw_payloads], instance=instance,
            resources={"timescale": db, "lake": lake, "google_health": google_resource(google_sim, token_key),
                       "fitbit_legacy": legacy},
            tags={"dagster/asset_partition_range_start": f"{ARCHIVED_DAY}|P001",
                  "dagster/asset_partition_range_end": f"{ARCHIVED_DAY}|P003"},
        )
        legacy_calls = list(gone_sim.state.calls)

    assert result.success  # a dead grant is recorded, not a pipeline failure
    meta = partition_metadata(result, "fitbit/raw_payloads")
    assert {k: (m["status"], m["auth_state"]) for k, m in meta.items()} == {
        f"{ARCHIVED_DAY}|P001": ("ok", "active"),
        f"{ARCHIVED_DAY}|P003": ("needs_reconsent", "needs_reconsent (gone_410)")}

    assert db.fetch("SELECT participant_id, provider, auth_state, reconsent_reason FROM wearables.oauth_tokens "
                    "ORDER BY 1") == [("P001", "google_health", "active", None),
                                      ("P003", "fitbit_legacy", "needs_reconsent", "gone_410")]
    rows = db.fetch("SELECT participant_id, local_date, source, status, detail FROM wearables.ingest_status")
    assert [r[:4] for r in rows] == [("P003", ARCHIVED_DAY, "fitbit_legacy", "needs_reconsent")]
    detail = rows[0][4]
    assert "gone_410" in detail and "re-consent P003 via Google Health" in detail
    assert "wearable-assets enroll --participant P003 --provider google_health" in detail

    # The Google participant landed normally; the legacy one has a manifest saying why not.
    ok = fitbit_manifest.read_manifest(lake, ParticipantDay(ARCHIVED_DAY, "P001"))
    assert ok is not None and ok["status"] == "ok" and ok["provider"] == "google_health" and ok["payloads"]
    assert ok["api_calls"] == google_sim.state.count_calls("/v4/") > 10
    gone = fitbit_manifest.read_manifest(lake, ParticipantDay(ARCHIVED_DAY, "P003"))
    assert gone is not None and gone["status"] == "needs_reconsent" and gone["payloads"] == []

    # Exactly one call reached the legacy API (a data call, answered 410): no retry, no token call.
    assert [(c.status, c.path.startswith("/1/")) for c in legacy_calls] == [(410, True)]
    assert gone_sim.state.token_calls == {}


def test_working_archive_loads_the_same_canonical_rows(legacy_sim: FitbitLegacySimulator,
                                                       legacy: FitbitLegacyResource, legacy_store: TokenStore,
                                                       db: TimescaleResource, lake: LakeResource,
                                                       cohort: SyntheticCohort) -> None:
    enrol_legacy(legacy_sim, legacy_store)
    landed, loaded = land_and_load(legacy, db, lake, ARCHIVED_DAY)
    assert landed.status == "ok" and loaded.status == "ok", loaded.detail
    truth = cohort.synced_day("P003", ARCHIVED_DAY)
    counts = dict(db.fetch("SELECT metric, count(*) FROM wearables.fitbit_intraday GROUP BY 1"))
    assert counts["heart_rate"] == truth.hr_times.size
    # The legacy API zero-fills minutes (off-wrist included), so every minute of the day is there.
    assert counts["steps"] == counts["calories"] == counts["distance"] == counts["floors"] == truth.minute_starts.size
    nights = truth.spo2 + cohort.synced_day("P003", ARCHIVED_DAY + timedelta(days=1)).spo2
    assert counts["spo2"] == sum(1 for s in nights if truth.start <= s.at < truth.end)
    assert counts["resting_heart_rate"] == counts["breathing_rate"] == 1
    (steps, metres), = db.fetch("SELECT sum(value) FILTER (WHERE metric = 'steps'), "
                                "sum(value) FILTER (WHERE metric = 'distance') FROM wearables.fitbit_intraday")
    assert steps == int(truth.steps.sum())
    assert metres == pytest.approx(float(truth.distance_m.sum()), abs=0.05)  # km with 5 decimals -> m
    (first_hr,), = db.fetch("SELECT min(ts) FROM wearables.fitbit_intraday WHERE metric = 'heart_rate'")
    assert first_hr == truth.heart_rate[0][0]  # local wall-clock times converted back to the exact instant

    sleep = truth.sleep
    assert sleep is not None
    rows = db.fetch("SELECT is_short, count(*), min(start_ts), max(end_ts), min(sleep_date) "
                    "FROM wearables.fitbit_sleep_stages GROUP BY 1 ORDER BY 1")
    assert rows == [(False, len(sleep.stages), sleep.start, sleep.end, ARCHIVED_DAY),
                    (True, len(sleep.short_wakes), min(w.start for w in sleep.short_wakes),
                     max(w.end for w in sleep.short_wakes), ARCHIVED_DAY)]
    assert db.fetch("SELECT status, source, last_device_sync FROM wearables.ingest_status") == [
        ("ok", "fitbit_legacy", cohort.last_sync("P003").replace(microsecond=0))]


def test_fall_back_day_in_local_wall_clock_time(roster, db: TimescaleResource, lake: LakeResource,
                                               token_key: str) -> None:
    cohort = SyntheticCohort.from_roster(roster, now=NOW, hr_interval_s=60)
    with FitbitLegacySimulator(cohort, mode="working") as sim:
        resource = legacy_resource(sim, token_key)
        enrol_legacy(sim, resource.token_store(db))
        _, loaded = land_and_load(resource, db, lake, LONDON_DST_END)
    window = DayWindow.of(LONDON_DST_END, "Europe/London")
    per_hour = db.fetch("SELECT date_trunc('hour', ts), count(*) FROM wearables.fitbit_intraday "
                        "WHERE metric = 'heart_rate' GROUP BY 1 ORDER BY 1")
    # 01:00-01:59 happens twice (BST, then GMT): both passes kept, each in its own UTC hour.
    assert len(per_hour) == 25 and {n for _, n in per_hour} == {60}
    assert per_hour[0][0] == window.start and loaded.hr_completeness_pct == 100.0
    (steps_rows,), = db.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE metric = 'steps'")
    assert steps_rows == 25 * 60
    assert {r[0] for r in db.fetch("SELECT DISTINCT utc_offset_min FROM wearables.fitbit_intraday")} == {0, 60}


def test_single_use_refresh_token_is_spent_once(legacy_sim: FitbitLegacySimulator, legacy: FitbitLegacyResource,
                                                legacy_store: TokenStore, db: TimescaleResource) -> None:
    token = enrol_legacy(legacy_sim, legacy_store)
    token["expires_in"] = 10
    legacy_store.save("P003", "fitbit_legacy", token)
    barrier = threading.Barrier(3)
    results: list[str] = []

    def run() -> None:
        client = legacy.client("P003", db)
        barrier.wait()
        client.call("1/user/-/profile.json", what="profile")
        results.append(client._access_token or "")

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(results) == 3 and len(set(results)) == 1  # all three use the one new token
    assert legacy_sim.state.token_calls["refresh_token"] == 1
    assert legacy_store.status("P003", "fitbit_legacy").auth_state == "active"


def test_hourly_budget_stops_cleanly(legacy_sim: FitbitLegacySimulator, legacy: FitbitLegacyResource,
                                     legacy_store: TokenStore, db: TimescaleResource) -> None:
    enrol_legacy(legacy_sim, legacy_store)
    legacy_sim.state.rate_limits = PerKeyLimits(150, 3600)  # an hour from the first call, not the clock hour
    legacy_sim.state.rate_limits.set("P003", 3)
    client = legacy.client("P003", db)
    for _ in range(3):
        client.call("1/user/-/devices.json", what="devices")
    # Fitbit-Rate-Limit-Remaining: 0 was seen: the next call is not even sent.
    with pytest.raises(RateLimited, match=r"resets in \d+ s"):
        client.call("1/user/-/devices.json", what="devices")
    assert legacy_sim.state.count_calls("/1/") == 3
    # A fresh client (a new run) that does not know the headers gets a 429 and stops the same way.
    with pytest.raises(RateLimited, match="429"):
        legacy.client("P003", db).call("1/user/-/devices.json", what="devices")
    assert [c.status for c in legacy_sim.state.calls][-1] == 429


def test_client_side_hourly_budget_is_per_participant(legacy_sim: FitbitLegacySimulator, legacy_store: TokenStore,
                                                      db: TimescaleResource, token_key: str) -> None:
    assert FitbitLegacyResource.model_fields["requests_per_hour"].default == 150  # the provider's budget
    enrol_legacy(legacy_sim, legacy_store, "P003")
    enrol_legacy(legacy_sim, legacy_store, "P001")
    small = legacy_resource(legacy_sim, token_key, requests_per_hour=3)
    client = small.client("P003", db)
    assert client.session.limiter.limit == 3 and client.session.limiter.window_s == 3600
    for _ in range(3):
        client.call("1/user/-/devices.json", what="devices")
    # The simulator's budget (150) is far from spent: the client refuses on its own, at once,
    # instead of blocking the worker for the rest of the hour.
    started = time.monotonic()
    with pytest.raises(RateLimited, match=r"budget of 3 calls per hour.*re-run after it resets"):
        client.call("1/user/-/devices.json", what="devices")
    with pytest.raises(RateLimited, match="calls per hour"):  # another participant-day of P003
        small.client("P003", db).call("1/user/-/devices.json", what="devices")
    assert time.monotonic() - started < 2
    assert legacy_sim.state.count_calls("/1/") == 3
    assert {c.status for c in legacy_sim.state.calls} == {200}
    # Another participant has a budget of their own.
    small.client("P001", db).call("1/user/-/devices.json", what="devices")
    assert legacy_sim.state.count_calls("/1/") == 4 and legacy_sim.state.calls[-1].status == 200


def test_revoked_legacy_grant_needs_reconsent(legacy_sim: FitbitLegacySimulator, legacy: FitbitLegacyResource,
                                              legacy_store: TokenStore, db: TimescaleResource) -> None:
    token = enrol_legacy(legacy_sim, legacy_store)
    legacy_sim.state.revoke("P003")
    with pytest.raises(NeedsReconsent, match="invalid_grant") as err:
        legacy.client("P003", db).call("1/user/-/profile.json", what="profile")
    # Fitbit echoes the refresh token in its error message: it must not reach our messages.
    assert token["refresh_token"] not in str(err.value) and token["access_token"] not in str(err.value)
    assert legacy_store.status("P003", "fitbit_legacy").reason == "invalid_grant"
