"""Every sleep session of a wake date is recorded (``wearables.fitbit_sleep_sessions`` and the
lake's ``fitbit_sleep_sessions``), with its state, also when it has no stages: a night whose
stages are not computed yet, a nap the provider will not stage. Against both simulators and the
real TimescaleDB; expected values come from the simulators' cohort."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import duckdb
import pytest

from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets_dev.simulators.google_health import SLEEP_PROCESSING, GoogleHealthSimulator

from .conftest import DAY, enrol_directly, legacy_resource

SESSION = "log_id, is_main_sleep, sleep_type, state, stages_status, info_code, minutes_asleep, stage_rows, start_ts, end_ts"
ARCHIVED_DAY = date(2026, 10, 20)  # P003 (legacy API, Europe/London) was enrolled until 2026-11-01


def load_day(client: Any, db: TimescaleResource, lake: LakeResource, pid: str, day: date) -> ingest.DayOutcome:
    """Land the participant-day from the API, then replace it in TimescaleDB and in the lake."""
    pday = ParticipantDay(day, pid)
    participant = participant_store.load(db, [pid])[pid]
    landed = landing.land_day(pday, participant, client, lake, db)
    assert landed.status == "ok", landed
    outcome = ingest.load_timescale(db, lake, pday)
    ingest.load_lake(db, lake, pday)
    return outcome


def db_sessions(db: TimescaleResource, pid: str, day: date) -> list[tuple[Any, ...]]:
    return db.fetch(f"SELECT {SESSION} FROM wearables.fitbit_sleep_sessions "
                    "WHERE participant_id = %s AND sleep_date = %s ORDER BY start_ts", (pid, day))


def lake_sessions(lake: LakeResource, pid: str, day: date) -> list[tuple[Any, ...]]:
    return duckdb.sql(
        f"SELECT {SESSION} FROM read_parquet('{lake.table_glob(ingest.LAKE_SLEEP_SESSIONS)}', hive_partitioning=true) "
        f"WHERE participant_id = '{pid}' AND sleep_date = DATE '{day}' ORDER BY start_ts").fetchall()


def stage_rows(db: TimescaleResource, pid: str, day: date) -> dict[str, int]:
    return dict(db.fetch("SELECT log_id, count(*) FROM wearables.fitbit_sleep_stages "
                         "WHERE participant_id = %s AND sleep_date = %s GROUP BY 1", (pid, day)))


def test_google_pending_night_then_staged_night_and_a_rejected_nap(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore,
    db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
) -> None:
    enrol_directly(google_sim, google_store, "P001")
    client = google.client("P001", db)
    night = cohort.day("P001", DAY).sleep
    assert night is not None
    nap = cohort.add_nap("P001", DAY)

    # Synced just after waking: Google has the session but not its stages yet.
    cohort.set_last_sync("P001", night.end + SLEEP_PROCESSING / 3)
    outcome = load_day(client, db, lake, "P001", DAY)
    pending = (str(night.log_id), True, "stages", "pending", None, None, None, 0, night.start, night.end)
    assert db_sessions(db, "P001", DAY) == [pending]
    assert lake_sessions(lake, "P001", DAY) == [pending]
    assert stage_rows(db, "P001", DAY) == {}
    assert outcome.status == "ok" and outcome.sleep_sessions == 1 and "not processed yet" in outcome.detail

    # The day has synced: the night has its stages, the nap is there without any.
    cohort.set_last_sync("P001", cohort.day("P001", DAY).end + timedelta(hours=1))
    for _ in range(2):  # and a re-run replaces, never duplicates
        load_day(client, db, lake, "P001", DAY)
        staged = len(night.stages) + len(night.short_wakes)
        expected = [
            (str(night.log_id), True, "stages", "staged", "SUCCEEDED", None, night.minutes_asleep, staged,
             night.start, night.end),
            (str(nap.log_id), False, "classic", "rejected_nap", "REJECTED_NAP", None, nap.time_in_bed - 6, 0,
             nap.start, nap.end),
        ]
        assert db_sessions(db, "P001", DAY) == expected
        assert lake_sessions(lake, "P001", DAY) == expected
        assert stage_rows(db, "P001", DAY) == {str(night.log_id): staged}
    assert db.fetch("SELECT count(*) FROM wearables.fitbit_sleep_sessions") == [(2,)]


@pytest.fixture
def legacy_sim(cohort: SyntheticCohort) -> Iterator[FitbitLegacySimulator]:
    with FitbitLegacySimulator(cohort, mode="working") as sim:
        yield sim


def test_legacy_pending_night_then_staged_night_and_a_classic_nap(
    legacy_sim: FitbitLegacySimulator, token_key: str, db: TimescaleResource, lake: LakeResource,
    cohort: SyntheticCohort,
) -> None:
    legacy = legacy_resource(legacy_sim, token_key)
    user = cohort.user("P003")
    legacy.token_store(db).save("P003", "fitbit_legacy",
                                legacy_sim.state.issue_tokens("P003", user.legacy_user_id or "P003"))
    client = legacy.client("P003", db)
    night = cohort.day("P003", ARCHIVED_DAY).sleep
    assert night is not None
    nap = cohort.add_nap("P003", ARCHIVED_DAY, minutes=90)

    legacy_sim.sleep_processing = timedelta(minutes=30)
    cohort.set_last_sync("P003", night.end + timedelta(minutes=10))
    outcome = load_day(client, db, lake, "P003", ARCHIVED_DAY)
    pending = (str(night.log_id), True, "stages", "pending", None, 0, night.minutes_asleep, 0, night.start, night.end)
    assert db_sessions(db, "P003", ARCHIVED_DAY) == lake_sessions(lake, "P003", ARCHIVED_DAY) == [pending]
    assert stage_rows(db, "P003", ARCHIVED_DAY) == {}
    assert outcome.status == "ok" and "pending" in outcome.detail

    cohort.set_last_sync("P003", cohort.day("P003", ARCHIVED_DAY).end + timedelta(hours=1))
    for _ in range(2):
        load_day(client, db, lake, "P003", ARCHIVED_DAY)
        staged = len(night.stages) + len(night.short_wakes)
        expected = [
            (str(night.log_id), True, "stages", "staged", None, 0, night.minutes_asleep, staged, night.start, night.end),
            # A nap under 3 hours is a "classic" log (infoCode 2) with asleep/restless/awake levels.
            (str(nap.log_id), False, "classic", "staged", None, 2, 90 - 4 - 2, 3, nap.start, nap.end),
        ]
        assert db_sessions(db, "P003", ARCHIVED_DAY) == lake_sessions(lake, "P003", ARCHIVED_DAY) == expected
        assert stage_rows(db, "P003", ARCHIVED_DAY) == {str(night.log_id): staged, str(nap.log_id): 3}
    assert db.fetch("SELECT DISTINCT stage FROM wearables.fitbit_sleep_stages WHERE log_id = %s ORDER BY 1",
                    (str(nap.log_id),)) == [("asleep",), ("awake",), ("restless",)]
