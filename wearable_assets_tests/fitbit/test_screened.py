"""The parse one load hands to the other (``fitbit/screened.py``): the same samples in both
destinations, never a stale parse after a re-fetch, and bounded memory.

Expected values come from the simulator's cohort and from the other destination, row by row."""

from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import numpy as np
import pytest

from wearable_assets.fitbit import ingest, landing, screened
from wearable_assets.fitbit.canonical import Batch, DayWindow, ParsedDay
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.plausibility import BatchScreen
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

from .conftest import enrol_directly

DAY = date(2026, 11, 24)


@pytest.fixture(autouse=True)
def handover(monkeypatch: pytest.MonkeyPatch) -> screened.ScreenedDays:
    fresh = screened.ScreenedDays()
    monkeypatch.setattr(screened, "SCREENED", fresh)
    return fresh


def land(google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource, pday: ParticipantDay) -> None:
    participant = participant_store.load(db, [pday.participant_id])[pday.participant_id]
    assert landing.land_day(pday, participant, google.client(pday.participant_id, db), lake, db).status == "ok"


def db_samples(db: TimescaleResource, pid: str) -> list[tuple]:
    return [tuple(r) for r in db.fetch(
        "SELECT metric, ts, value, utc_offset_min, device FROM wearables.fitbit_intraday "
        "WHERE participant_id = %s ORDER BY metric, ts, device", (pid,))]


def lake_samples(lake: LakeResource, pid: str) -> list[tuple]:
    return [tuple(r) for r in duckdb.sql(
        "SELECT metric, ts, value, utc_offset_min, device FROM "
        f"read_parquet('{lake.table_glob('fitbit_intraday')}', hive_partitioning=true) "
        f"WHERE participant_id = '{pid}' ORDER BY metric, ts, device").fetchall()]


@pytest.mark.parametrize("lake_first", [False, True])
def test_the_second_load_takes_the_first_loads_parse_and_both_hold_the_same_samples(
        lake_first: bool, google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore,
        db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
        handover: screened.ScreenedDays) -> None:
    enrol_directly(google_sim, google_store, "P001")
    pday = ParticipantDay(DAY, "P001")
    land(google, db, lake, pday)
    loads = [ingest.load_timescale, ingest.load_lake]
    first, second = (loads[::-1] if lake_first else loads)
    one = first(db, lake, pday)
    assert (handover.hits, handover.misses) == (0, 1) and handover.held_bytes > 0
    two = second(db, lake, pday)
    assert (handover.hits, handover.misses) == (1, 1) and handover.held_bytes == 0  # taken, not parsed again
    assert one.rows_per_metric == two.rows_per_metric and one.detail == two.detail

    in_db = db_samples(db, "P001")
    assert len(in_db) == cohort.synced_day("P001", DAY).hr_times.size + one.rows - one.rows_per_metric["heart_rate"]
    assert [(m, ts, v, o, d) for m, ts, v, o, d in in_db] == [
        (m, ts.astimezone(timezone.utc), v, o, d) for m, ts, v, o, d in lake_samples(lake, "P001")]


def test_a_fetch_between_the_two_loads_is_parsed_afresh(
        google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore,
        db: TimescaleResource, lake: LakeResource, cohort: SyntheticCohort,
        handover: screened.ScreenedDays) -> None:
    enrol_directly(google_sim, google_store, "P001")
    pday = ParticipantDay(DAY, "P001")
    cohort.set_last_sync("P001", datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc))  # half the day synced
    land(google, db, lake, pday)
    partial = ingest.load_timescale(db, lake, pday)  # keeps the half day's parse

    cohort.set_last_sync("P001", None)  # the rest of the day synced, and was fetched again
    land(google, db, lake, pday)
    whole = ingest.load_lake(db, lake, pday)
    assert handover.hits == 0, "the lake load took the parse of a fetch the manifest no longer names"
    truth = cohort.synced_day("P001", DAY).hr_times.size
    assert partial.rows_per_metric["heart_rate"] < whole.rows_per_metric["heart_rate"] == truth
    (lake_hr,), = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake.table_glob('fitbit_intraday')}') "
                             "WHERE metric = 'heart_rate'").fetchall()
    assert lake_hr == truth

    ingest.load_timescale(db, lake, pday)  # takes the lake load's parse of the new fetch
    assert handover.hits == 1
    assert len(db_samples(db, "P001")) == len(lake_samples(lake, "P001"))


def _batch(n: int) -> Batch:
    return Batch("heart_rate", np.arange(n, dtype=np.int64), np.full(n, 60.0), np.zeros(n, dtype=np.int16),
                 np.zeros(n, dtype=np.intp), ("dev",))


def _day(*batches: Batch) -> screened.ScreenedDay:
    window = DayWindow.of(DAY, "UTC")
    return screened.ScreenedDay(ParsedDay(window=window, participant_id="P001", source="google_health"),
                                BatchScreen(), list(batches))


def test_memory_held_is_bounded_whatever_the_run_size() -> None:
    one_day = _day(_batch(1000)).nbytes
    handover = screened.ScreenedDays(max_bytes=3 * one_day)
    for n in range(10):  # a run of ten days whose second loads never come
        handover.keep(("day", n), _day(_batch(1000)))
    assert handover.held_bytes == 3 * one_day  # the first three kept, the rest dropped
    assert handover.take(("day", 5)) is None
    assert handover.take(("day", 0)) is not None and handover.held_bytes == 2 * one_day

    # A day larger than the limit streams through whole and is never kept.
    day = _day()
    passed = list(screened.keeping([_batch(600), _batch(600)], day, limit=one_day))
    assert [len(b) for b in passed] == [600, 600]
    assert day.overflowed and day.batches == []
    handover.keep(("day", "big"), day)
    assert handover.take(("day", "big")) is None


def test_a_load_run_again_reads_the_payloads_again(
        google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore,
        db: TimescaleResource, lake: LakeResource, handover: screened.ScreenedDays) -> None:
    enrol_directly(google_sim, google_store, "P001")
    pday = ParticipantDay(DAY, "P001")
    land(google, db, lake, pday)
    first = ingest.load_timescale(db, lake, pday)
    again = ingest.load_timescale(db, lake, pday)
    assert handover.hits == 0 and handover.misses == 2 and again.rows_per_metric == first.rows_per_metric
