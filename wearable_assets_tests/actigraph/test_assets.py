"""The ActiGraph assets end to end: simulator -> dlt -> parquet lake -> TimescaleDB."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from wearable_assets.actigraph.assets import daily_statistics, daily_statistics_parquet
from wearable_assets.actigraph.ingest import LAKE_TABLE
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator
from wearable_assets_tests.partition_events import check_results, partition_metadata

ASSETS = [daily_statistics_parquet, daily_statistics]
DAY = date(2026, 11, 2)
TYPED = ("participant_id", "local_date", "setting_id", "study_id", "subject_id", "wear_minutes", "non_wear_minutes",
         "sleep_minutes", "total_counts", "steps", "mets", "mvpa_minutes", "is_valid_day")


def materialize(
    instance: dg.DagsterInstance, centrepoint: CentrePointResource, lake: LakeResource, timescale: TimescaleResource,
    partition_key: str | None = None, tags: dict[str, str] | None = None, raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS, partition_key=partition_key, tags=tags, instance=instance, raise_on_error=raise_on_error,
        resources={"centrepoint": centrepoint, "lake": lake, "timescale": timescale},
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str, key: str) -> dict[str, Any]:
    """The participant-day's own metadata (its latest materialisation of the run)."""
    return partition_metadata(result, asset)[key]


def db_rows(timescale: TimescaleResource, participant_id: str) -> list[tuple[Any, ...]]:
    return timescale.fetch(
        f"SELECT {', '.join(TYPED)}, daily_statistic_id, record->>'date' FROM wearables.actigraph_daily_statistics "
        "WHERE participant_id = %s ORDER BY local_date, setting_id", (participant_id,),
    )


def lake_files(lake: LakeResource, participant_id: str, day: date) -> list[Path]:
    return sorted(Path(lake.partition_prefix(LAKE_TABLE, participant_id, day)).glob("*.parquet"))


def lake_rows(lake: LakeResource, participant_id: str) -> list[tuple[Any, ...]]:
    return duckdb.sql(
        f"SELECT {', '.join(TYPED)} FROM read_parquet('{lake.table_glob(LAKE_TABLE)}', hive_partitioning=true) "
        f"WHERE participant_id = '{participant_id}' ORDER BY local_date, setting_id"
    ).fetchall()


def status(timescale: TimescaleResource, participant_id: str) -> list[tuple[Any, ...]]:
    return timescale.fetch(
        "SELECT local_date, status, rows_loaded, api_calls, detail FROM wearables.ingest_status "
        "WHERE participant_id = %s AND source = 'centrepoint' ORDER BY local_date", (participant_id,),
    )


@pytest.fixture
def env(enrolled: TimescaleResource, instance: dg.DagsterInstance, centrepoint: CentrePointResource,
        lake: LakeResource) -> dict[str, Any]:
    return {"instance": instance, "centrepoint": centrepoint, "lake": lake, "timescale": enrolled}


def test_materialize_a_participant_day(env: dict[str, Any], sim: CentrePointSimulator) -> None:
    result = materialize(**env, partition_key=f"{DAY}|P002")
    assert result.success
    expected = sim.daily_statistic(50002, DAY, 0)  # what the API holds for Brisbane's 2 November
    wear = int(expected["epochAggregation"]["wearMinutes"])
    parquet = metadata(result, "actigraph/daily_statistics_parquet", f"{DAY}|P002")
    assert parquet["dagster/row_count"] == 1 and parquet["pages_fetched"] == 1 and parquet["api_calls"] == 1
    assert parquet["wear_minutes"] == wear and parquet["status"] == "ok"
    db = metadata(result, "actigraph/daily_statistics", f"{DAY}|P002")
    assert db["dagster/row_count"] == 1 and db["wear_minutes"] == wear and db["valid_day"] == (wear >= 600)

    (row,) = db_rows(env["timescale"], "P002")
    # The setting GUID the API sent is kept, and keyed as its first 8 bytes (signed big-endian bigint).
    guid = expected["dailyStatisticsSettingId"]
    setting_id = int.from_bytes(uuid.UUID(guid).bytes[:8], "big", signed=True)
    assert row[:5] == ("P002", DAY, setting_id, str(expected["studyId"]), str(expected["subjectId"]))
    assert row[5] == wear and row[-2] == expected["id"]
    assert env["timescale"].fetch("SELECT setting_guid FROM wearables.actigraph_daily_statistics") == [(guid,)]
    assert status(env["timescale"], "P002") == [(DAY, "ok", 1, 1, "1 daily statistic(s)")]
    # The whole day was uploaded: the data reaches Brisbane's midnight after 2 November.
    (last_sync,) = env["timescale"].fetch(
        "SELECT last_device_sync FROM wearables.ingest_status WHERE participant_id = 'P002'")[0]
    assert last_sync == datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
    assert len(lake_files(env["lake"], "P002", DAY)) == 1
    raw = env["lake"].read_raw("centrepoint", "P002", DAY, "daily_statistics")
    assert expected["date"].encode() in raw  # the API's record kept as received


def test_local_date_for_subjects_east_and_west_of_utc(env: dict[str, Any]) -> None:
    # One run over both participants (Brisbane UTC+10, New York UTC-5) for the same day.
    tags = {"dagster/asset_partition_range_start": f"{DAY}|P001", "dagster/asset_partition_range_end": f"{DAY}|P002"}
    assert materialize(**env, tags=tags).success
    brisbane = db_rows(env["timescale"], "P002")
    new_york = db_rows(env["timescale"], "P001")
    # Brisbane's 2 November starts on 1 November in UTC; New York's starts on 2 November.
    assert [(r[1], r[-1]) for r in brisbane] == [(DAY, "2026-11-01T14:00:00+00:00")]
    assert [(r[1], r[-1]) for r in new_york] == [(DAY, "2026-11-02T05:00:00+00:00")] * 2  # two settings
    assert len({r[2] for r in new_york}) == 2


def test_reruns_and_recomputed_days_never_duplicate(env: dict[str, Any], sim: CentrePointSimulator) -> None:
    key = f"{DAY}|P001"
    assert materialize(**env, partition_key=key).success
    first = db_rows(env["timescale"], "P001")
    assert materialize(**env, partition_key=key).success
    assert db_rows(env["timescale"], "P001") == first and len(first) == 2
    assert len(lake_files(env["lake"], "P001", DAY)) == 1

    sim.recompute(50001, DAY)  # a later upload changed the day: new numbers, new record id
    result = materialize(**env, partition_key=key)
    after = db_rows(env["timescale"], "P001")
    assert len(after) == 2 and metadata(result, "actigraph/daily_statistics", key)["rows_replaced"] == 2
    assert [r[5] for r in after] == [r[5] + 40 for r in first]
    assert {r[-2] for r in after}.isdisjoint({r[-2] for r in first})
    assert len(lake_files(env["lake"], "P001", DAY)) == 1
    # The lake read with DuckDB holds exactly what TimescaleDB holds.
    assert lake_rows(env["lake"], "P001") == [r[: len(TYPED)] for r in after]


def test_a_day_without_data_is_no_data_and_clears_old_rows(env: dict[str, Any], sim: CentrePointSimulator) -> None:
    key = f"{DAY}|P005"
    assert materialize(**env, partition_key=key).success
    assert len(db_rows(env["timescale"], "P005")) == 1
    sim.remove_day(50005, DAY)
    result = materialize(**env, partition_key=key)
    parquet = metadata(result, "actigraph/daily_statistics_parquet", key)
    assert parquet["dagster/row_count"] == 0 and parquet["status"] == "no_data"
    assert db_rows(env["timescale"], "P005") == [] and lake_files(env["lake"], "P005", DAY) == []
    assert [s[:3] for s in status(env["timescale"], "P005")] == [(DAY, "no_data", 0)]


def test_a_subject_unknown_to_centrepoint_is_no_data(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env["timescale"].execute(
        "UPDATE wearables.participants SET centrepoint_subject_id = '59999' WHERE participant_id = 'P005'")
    assert materialize(**env, partition_key=f"{DAY}|P005").success
    (row,) = status(env["timescale"], "P005")
    assert row[1] == "no_data" and "404" in row[4]


def test_api_error_is_recorded_on_its_participant_day(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"{DAY}|P005"
    assert materialize(**env, partition_key=key).success
    loaded = db_rows(env["timescale"], "P005")
    monkeypatch.setenv("CENTREPOINT_CLIENT_SECRET", "not-the-secret")
    result = materialize(**env, partition_key=key, raise_on_error=False)
    assert result.success  # recorded on the participant-day, red there; a ranged run's others go on
    (row,) = status(env["timescale"], "P005")
    assert row[1] == "api_error" and "invalid_client" in row[4] and "not-the-secret" not in row[4]
    for asset in ("actigraph/daily_statistics_parquet", "actigraph/daily_statistics"):
        outcome = check_results(result, asset)[key]
        assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.ERROR
        assert metadata(result, asset, key)["status"] == "api_error"
    # The failed fetch neither reloads the old records as new nor removes what was loaded before.
    assert db_rows(env["timescale"], "P005") == loaded and len(loaded) == 1
    assert status(env["timescale"], "P005")[0][1] == "api_error"


def test_participant_without_centrepoint_is_skipped(env: dict[str, Any], sim: CentrePointSimulator) -> None:
    result = materialize(**env, partition_key=f"{DAY}|P004")
    assert result.success
    skipped = metadata(result, "actigraph/daily_statistics_parquet", f"{DAY}|P004")
    assert skipped["status"] == "skipped" and "no CentrePoint subject" in skipped["detail"]
    assert "dagster/row_count" not in skipped
    outcome = check_results(result, "actigraph/daily_statistics")[f"{DAY}|P004"]
    assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.WARN
    assert sim.state.count_calls("/analytics") == 0 and status(env["timescale"], "P004") == []


def test_a_ranged_run_fetches_the_window_once(env: dict[str, Any], sim: CentrePointSimulator) -> None:
    tags = {"dagster/asset_partition_range_start": "2026-11-01|P005",
            "dagster/asset_partition_range_end": "2026-11-03|P005"}
    result = materialize(**env, tags=tags)
    assert result.success
    assert sorted({e.partition for e in result.asset_materializations_for_node("actigraph__daily_statistics")}) == [
        f"2026-11-0{d}|P005" for d in (1, 2, 3)]
    parquet = partition_metadata(result, "actigraph/daily_statistics_parquet")
    assert sorted(parquet) == [f"2026-11-0{d}|P005" for d in (1, 2, 3)]
    assert [(m["dagster/row_count"], m["api_calls"]) for m in parquet.values()] == [(1, 1)] * 3
    assert sim.state.count_calls("/analytics") == 1
    assert [s[:3] for s in status(env["timescale"], "P005")] == [
        (date(2026, 11, d), "ok", 1) for d in (1, 2, 3)]


def _materialize_in_own_process(key: str, instance_ref: Any, dsn: str, lake_url: str) -> int:
    """One participant-day run in a fresh process, as Dagster's multiprocess executor does."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        result = dg.materialize(
            [daily_statistics_parquet], partition_key=key, instance=instance,
            resources={"centrepoint": CentrePointResource(), "lake": LakeResource(url=lake_url),
                       "timescale": TimescaleResource(dsn=dsn)},
        )
        return metadata(result, "actigraph/daily_statistics_parquet", key)["dagster/row_count"]


def test_concurrent_participant_days_do_not_share_dlt_state(env: dict[str, Any]) -> None:
    keys = [f"{DAY}|P001", f"{DAY}|P002", f"{DAY}|P005", f"{date(2026, 11, 3)}|P001"]
    args = (env["instance"].get_ref(), env["timescale"].dsn, env["lake"].url)
    context = multiprocessing.get_context("forkserver")  # clean processes, imports paid once
    context.set_forkserver_preload(["wearable_assets_tests.actigraph.test_assets"])
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        rows = list(pool.map(_materialize_in_own_process, keys, *[[a] * len(keys) for a in args]))
    assert rows == [2, 1, 1, 2]
    for key in keys:
        day, pid = key.split("|")
        assert len(lake_files(env["lake"], pid, date.fromisoformat(day))) == 1
    assert len(lake_rows(env["lake"], "P001")) == 4


def test_records_without_a_readable_date_are_kept_and_named(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with CentrePointSimulator(extra_fields={"date": "sometime"}, data_end=date(2026, 11, 20)) as odd:
        monkeypatch.setenv("CENTREPOINT_BASE_URL", odd.url)
        monkeypatch.setenv("CENTREPOINT_TOKEN_URL", odd.token_url)
        result = materialize(**env, partition_key=f"{DAY}|P005", raise_on_error=False)
    outcome = check_results(result, "actigraph/daily_statistics_parquet")[f"{DAY}|P005"]
    assert not outcome.passed and outcome.description and "have no readable 'date'" in outcome.description
    landed = env["lake"].read_raw("centrepoint", "P005", DAY, "daily_statistics")
    assert landed.count(b'"sometime"') == 3  # the window's records, as received
    assert db_rows(env["timescale"], "P005") == []
