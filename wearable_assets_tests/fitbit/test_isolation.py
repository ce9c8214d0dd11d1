"""Overlapping Fitbit runs of one participant-day: two fetches, two loads, a fetch beside a load,
a lost payload in a ranged run, and re-runs of raw landing. Workers are separate processes
released together (``wearable_assets_tests.concurrency``) against the Google Health simulator,
the real database and a real lake folder. Expected counts come from the simulator's cohort."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.fitbit.assets import intraday, intraday_parquet, raw_payloads
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.roster import Participant
from wearable_assets.storage.lake import Lake
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.common import Fault
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator
from wearable_assets_tests.concurrency import Outcome, errors, run_rounds
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import check_results, partition_metadata

from .conftest import DAY, enrol_directly, google_resource
from .test_assets import resources

PID = "P001"
PDAY = ParticipantDay(DAY, PID)
ROUNDS = 20
STEPS_PATH = "/v4/users/me/dataTypes/steps/dataPoints"


#: The devices last synced at 09:00 New York time on DAY: the night's sleep and a morning of
#: samples (~9K heart-rate rows instead of ~23K), so each of the many rounds is quicker.
LAST_SYNC = datetime(2026, 11, 10, 14, 0, tzinfo=timezone.utc)


@pytest.fixture
def fast_google(google_sim: GoogleHealthSimulator, google_store: TokenStore, token_key: str,
                cohort: SyntheticCohort) -> GoogleHealthResource:
    """P001 and P002 enrolled, a partly synced day; budgets out of the way (two processes fetch
    the same user ~40 times a test)."""
    enrol_directly(google_sim, google_store, PID, "P002")
    for pid in (PID, "P002"):
        google_sim.state.set_rate_limit(pid, 100_000)
        cohort.set_last_sync(pid, LAST_SYNC)
    return google_resource(google_sim, token_key, requests_per_minute=100_000)


def _config(google: GoogleHealthResource) -> dict[str, Any]:
    return {name: getattr(google, name) for name in type(google).model_fields}


def _truth(cohort: SyntheticCohort, pid: str = PID) -> int:
    return int(cohort.synced_day(pid, DAY).hr_times.size)


def _heart_rate_rows(db: TimescaleResource, pid: str = PID) -> tuple[int, int]:
    (rows, distinct), = db.fetch("SELECT count(*), count(DISTINCT ts) FROM wearables.fitbit_intraday "
                                 "WHERE participant_id = %s AND metric = 'heart_rate'", (pid,))
    return rows, distinct


def _raw_folder(lake: Lake, pid: str = PID) -> Path:
    return Path(lake.raw_key("fitbit", pid, DAY, "x")).parent


def _fetch_folders(lake: Lake, pid: str = PID) -> list[str]:
    return sorted(p.name for p in _raw_folder(lake, pid).iterdir() if p.is_dir())


def _empty_folders(lake: Lake) -> list[str]:
    root = Path(lake.url) / "raw"
    return [str(p) for p in root.rglob("*") if p.is_dir() and not any(p.iterdir())]


def _assert_landed_and_complete(lake: Lake, where: str) -> dict[str, Any]:
    manifest = fitbit_manifest.read_manifest(lake, PDAY)
    assert manifest is not None and manifest["status"] == "ok", where
    assert all(fitbit_manifest.read_landed(lake, PDAY, manifest, name) for name in manifest["payloads"]), where
    assert _fetch_folders(lake) == [f"fetch={manifest['fetch']}"], where
    assert _empty_folders(lake) == [], where
    return manifest


# --- jobs run in the worker processes ---------------------------------------------------------
def _land(dsn: str, lake_url: str, google: dict[str, Any], participant: Participant,
          worker: int, round_: int) -> str:
    timescale = Timescale(dsn, apply_migrations=False)
    client = GoogleHealthResource(**google).client(PID, timescale)
    outcome = landing.land_day(PDAY, participant, client, Lake(lake_url), timescale)
    return outcome.status + (f": {outcome.detail}" if outcome.detail else "")


def _load(dsn: str, lake_url: str, worker: int, round_: int) -> tuple[str, int, int]:
    outcome = ingest.load_timescale(Timescale(dsn, apply_migrations=False), Lake(lake_url), PDAY)
    return outcome.status, outcome.rows, outcome.sleep_stages


def _land_or_load(dsn: str, lake_url: str, google: dict[str, Any], participant: Participant,
                  fetch_s: float, worker: int, round_: int) -> Any:
    """Worker 0 fetches; worker 1 loads, starting at a different moment of the fetch each round
    (from its start to its end, where the fetch writes the manifest and prunes)."""
    if worker == 0:
        return _land(dsn, lake_url, google, participant, worker, round_)
    time.sleep(fetch_s * (round_ % 10) / 9)
    return _load(dsn, lake_url, worker, round_)


# --- tests ------------------------------------------------------------------------------------
def test_two_concurrent_fetches_leave_a_manifest_whose_payloads_exist_and_load(
    fast_google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
) -> None:
    participant = participant_store.load(db, [PID])[PID]
    plain = Lake(lake.url)

    def check(round_: int, outcomes: list[Outcome]) -> None:
        assert errors(outcomes) == [] and [o.value for o in outcomes] == ["ok", "ok"], outcomes
        _assert_landed_and_complete(plain, f"round {round_}")
        if round_ % 5 == 4:  # and what was landed loads, complete
            loaded = ingest.load_timescale(db, plain, PDAY)
            assert loaded.status == "ok" and _heart_rate_rows(db) == (_truth(cohort), _truth(cohort))

    run_rounds(_land, (db.dsn, lake.url, _config(fast_google), participant), workers=2, rounds=ROUNDS, check=check)


def test_two_concurrent_loads_of_one_participant_day_are_exact(
    fast_google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
) -> None:
    participant = participant_store.load(db, [PID])[PID]
    assert landing.land_day(PDAY, participant, fast_google.client(PID, db), lake, db).status == "ok"
    truth = _truth(cohort)

    def check(round_: int, outcomes: list[Outcome]) -> None:
        assert errors(outcomes) == [], errors(outcomes)
        (status, rows, sleep), other = (o.value for o in outcomes)
        assert status == "ok" and other == (status, rows, sleep)
        assert _heart_rate_rows(db) == (truth, truth)
        (total,), = db.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE participant_id = %s", (PID,))
        (stages,), = db.fetch("SELECT count(*) FROM wearables.fitbit_sleep_stages WHERE participant_id = %s", (PID,))
        assert (total, stages) == (rows, sleep) and sleep > 0
        assert db.fetch("SELECT status, rows_loaded FROM wearables.ingest_status") == [("ok", rows + sleep)]

    run_rounds(_load, (db.dsn, lake.url), workers=2, rounds=ROUNDS, check=check)


def test_a_load_never_reads_payloads_a_concurrent_fetch_is_pruning(
    fast_google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
) -> None:
    participant = participant_store.load(db, [PID])[PID]
    started = time.monotonic()
    assert landing.land_day(PDAY, participant, fast_google.client(PID, db), lake, db).status == "ok"
    fetch_s = time.monotonic() - started
    truth = _truth(cohort)

    def check(round_: int, outcomes: list[Outcome]) -> None:
        assert errors(outcomes) == [], errors(outcomes)  # no FileNotFoundError in the loader
        fetched, (status, _rows, _sleep) = (o.value for o in outcomes)
        assert fetched == "ok" and status == "ok"
        _assert_landed_and_complete(Lake(lake.url), f"round {round_}")
        assert _heart_rate_rows(db) == (truth, truth)

    run_rounds(_land_or_load, (db.dsn, lake.url, _config(fast_google), participant, fetch_s), workers=2,
               rounds=ROUNDS, check=check)


def test_a_lost_payload_fails_its_participant_day_only(
    fast_google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
    instance: dg.DagsterInstance,
) -> None:
    add_participants(instance, PID, "P002")
    res = resources(fast_google, db, lake)
    ranged = {"dagster/asset_partition_range_start": f"{DAY}|{PID}", "dagster/asset_partition_range_end": f"{DAY}|P002"}
    assert dg.materialize([raw_payloads], resources=res, instance=instance, tags=ranged).success
    manifest = fitbit_manifest.read_manifest(lake, PDAY)
    assert manifest is not None
    lost = next(n for n in manifest["payloads"] if n.startswith("heart-rate."))
    os.remove(lake.raw_key("fitbit", PID, DAY, fitbit_manifest.stored_name(manifest, lost)))

    fix = f"re-materialize fitbit/raw_payloads for partition {DAY}|{PID}"
    with pytest.raises(ingest.MissingPayload, match=f"payload {lost} named by the manifest of .*{fix}"):
        ingest.load_timescale(db, lake, PDAY)

    result = dg.materialize([raw_payloads, intraday, intraday_parquet], selection=[intraday, intraday_parquet],
                            resources=res, instance=instance, tags=ranged, raise_on_error=False)
    # The run goes on; the lost participant-day is red on its own partition, naming the fix...
    assert result.success
    outcome = check_results(result, ["fitbit", "intraday"])[f"{DAY}|{PID}"]
    assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.ERROR
    assert outcome.description is not None and fix in outcome.description
    for asset in (["fitbit", "intraday"], ["fitbit", "intraday_parquet"]):
        mine = partition_metadata(result, asset)
        assert mine[f"{DAY}|{PID}"]["status"] == "api_error" and fix in mine[f"{DAY}|{PID}"]["detail"]
        assert mine[f"{DAY}|P002"]["status"] == "ok"
    # ...and the other participant-day was loaded into both destinations.
    truth = _truth(cohort, "P002")
    assert _heart_rate_rows(db, "P002") == (truth, truth) and _heart_rate_rows(db, PID) == (0, 0)
    (lake_rows,) = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake.table_glob('fitbit_intraday')}') "
                              "WHERE metric = 'heart_rate'").fetchone()  # type: ignore[misc]
    assert lake_rows == truth
    status = {pid: (s, d) for pid, s, d in db.fetch("SELECT participant_id, status, detail FROM wearables.ingest_status")}
    assert status["P002"][0] == "ok" and status[PID][0] == "api_error" and fix in status[PID][1]

    # Doing what the message says repairs it.
    single = f"{DAY}|{PID}"
    assert dg.materialize([raw_payloads, intraday, intraday_parquet], resources=res, instance=instance,
                          partition_key=single).success
    assert _heart_rate_rows(db, PID) == (_truth(cohort), _truth(cohort))


def test_rerunning_raw_landing_leaves_one_fetch_folder_and_no_empty_folder(
    fast_google: GoogleHealthResource, google_sim: GoogleHealthSimulator, db: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    participant = participant_store.load(db, [PID])[PID]
    client = fast_google.client(PID, db)
    # An empty fetch folder as earlier versions left behind: the next landing clears it too.
    (_raw_folder(lake) / "fetch=20261111T000000000000Z").mkdir(parents=True)
    fetches = []
    for _ in range(4):
        assert landing.land_day(PDAY, participant, client, lake, db).status == "ok"
        fetches.append(_assert_landed_and_complete(lake, "after a good fetch")["fetch"])
    assert len(set(fetches)) == 4  # each re-run was a new fetch, and it replaced the one before
    # A failed re-fetch keeps its folder (what broke it) beside the last good one...
    google_sim.state.inject(Fault(STEPS_PATH, kind="malformed"))
    assert landing.land_day(PDAY, participant, client, lake, db).status == "api_error"
    failed = fitbit_manifest.read_manifest(lake, PDAY)
    assert failed is not None and failed["last_ok"]["fetch"] == fetches[-1]
    assert _fetch_folders(lake) == sorted([f"fetch={fetches[-1]}", f"fetch={failed['fetch']}"])
    # ...and the next good run, here through the asset, removes both: no empty folder remains.
    add_participants(instance, PID)
    for _ in range(2):
        assert dg.materialize([raw_payloads], resources=resources(fast_google, db, lake), instance=instance,
                              partition_key=f"{DAY}|{PID}").success
        _assert_landed_and_complete(lake, "after a good run")
