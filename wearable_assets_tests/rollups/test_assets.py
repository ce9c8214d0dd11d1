"""The rollup assets in Dagster runs: ranged runs, implausible values, cohort weeks in the lake."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import check_results, partition_metadata
from wearable_assets_tests.rollups.runs import execute, failure_messages, materialized_keys
from wearable_assets_tests.rollups.sources import ACTIGRAPH_ONLY, BOTH, FITBIT_ONLY, Sources, minutes_of

DAY = date(2026, 11, 3)
ROLLUPS = dg.AssetSelection.assets("intraday_hourly", "participant_day_summary")


def test_ranged_run_rolls_up_every_participant_day_in_one_step(
    sources: Sources, timescale: TimescaleResource, lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    add_participants(instance, "F001", "A001", "B001")
    next_day = DAY + timedelta(days=1)
    for day in (DAY, next_day):
        sources.worn(FITBIT_ONLY, day, 700)
        sources.actigraph(ACTIGRAPH_ONLY, day, wear=640)

    # 2 days x the participant range F001..A001 (insertion order), as a backfill or the schedule sends it.
    result = execute(ROLLUPS, instance, partition_range=(f"{DAY}|F001", f"{next_day}|A001"))

    assert result.success, failure_messages(result)
    expected = sorted(f"{d}|{p}" for d in (DAY, next_day) for p in ("F001", "A001"))
    assert materialized_keys(result, "intraday_hourly") == expected
    assert materialized_keys(result, "participant_day_summary") == expected
    assert timescale.fetch(
        "SELECT participant_id, count(*) FROM wearables.participant_day_summary WHERE valid_day GROUP BY 1 ORDER BY 1"
    ) == [("A001", 2), ("F001", 2)]
    # Each partition records its own verdict and numbers, not the run's.
    summary = partition_metadata(result, "participant_day_summary")
    assert sorted(summary) == expected
    assert all(m["valid_day"] and m["completeness_reason"] == "complete" for m in summary.values())
    assert {k: m["wear_minutes"] for k, m in summary.items()} == {k: 700.0 if "F001" in k else 640.0 for k in expected}
    hourly = partition_metadata(result, "intraday_hourly")
    assert {k: m["status"] for k, m in hourly.items()} == {
        k: "ok" if "F001" in k else "no_data" for k in expected}
    # The summary's checks ran once for the whole range, with one result per participant-day.
    complete = check_results(result, "participant_day_summary", "participant_day_complete")
    assert sorted(complete) == expected and all(e.passed for e in complete.values())


def test_implausible_heart_rate_on_one_participant_day_does_not_stop_the_others(
    sources: Sources, timescale: TimescaleResource, lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    add_participants(instance, "F001", "A001", "B001")
    next_day = DAY + timedelta(days=1)
    for day in (DAY, next_day):
        sources.worn(FITBIT_ONLY, day, 700, hr=70)
        sources.actigraph(ACTIGRAPH_ONLY, day, wear=640)
    # Rows stored before the plausibility rules existed (the loader now quarantines them): 255 and
    # 12 bpm on one participant-day of the range.
    sources.intraday(FITBIT_ONLY, "heart_rate", minutes_of(FITBIT_ONLY, DAY, 20 * 60, 2), [255, 12])

    result = execute(ROLLUPS, instance, partition_range=(f"{DAY}|F001", f"{next_day}|A001"))

    assert result.success, failure_messages(result)
    expected = sorted(f"{d}|{p}" for d in (DAY, next_day) for p in ("F001", "A001"))
    assert materialized_keys(result, "intraday_hourly") == expected
    assert materialized_keys(result, "participant_day_summary") == expected
    # The bad samples are in no rollup; the day itself is rolled up from its plausible samples.
    assert timescale.fetch("SELECT min(min_value), max(max_value) FROM wearables.intraday_hourly "
                           "WHERE metric = 'heart_rate'") == [(70.0, 70.0)]
    rows = timescale.fetch("SELECT participant_id, local_date, valid_day, completeness_reason, fitbit_status, "
                           "quarantined_values, hr_min, hr_max, fitbit_wear_minutes "
                           "FROM wearables.participant_day_summary ORDER BY 1, 2")
    assert rows == [
        ("A001", DAY, True, "complete", "not_rostered", 0, None, None, None),
        ("A001", next_day, True, "complete", "not_rostered", 0, None, None, None),
        ("F001", DAY, True, "fitbit_implausible", "implausible", 2, 70.0, 70.0, 700),
        ("F001", next_day, True, "complete", "ok", 0, 70.0, 70.0, 700),
    ]


def test_single_participant_day_metadata_is_plottable(
    sources: Sources, timescale: TimescaleResource, lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    add_participants(instance, "B001")
    sources.worn(BOTH, DAY, 650, hr=64)
    result = execute(dg.AssetSelection.assets("participant_day_summary"), instance, partition_key=f"{DAY}|B001")
    assert result.success, failure_messages(result)
    mat = result.asset_materializations_for_node("participant_day_summary")[-1]
    assert mat.partition == f"{DAY}|B001"
    assert (mat.metadata["hr_mean"].value, mat.metadata["steps"].value, mat.metadata["wear_minutes"].value) == (
        64.0, 6500.0, 650.0)
    completeness = next(e for e in result.get_asset_check_evaluations() if e.check_name == "participant_day_complete")
    assert completeness.partition == f"{DAY}|B001" and completeness.passed


def test_cohort_week_lands_in_timescale_and_the_lake_and_reruns_replace(
    sources: Sources, timescale: TimescaleResource, lake: LakeResource, instance: dg.DagsterInstance
) -> None:
    monday = date(2026, 11, 2)
    sources.worn(FITBIT_ONLY, DAY, 700)
    add_participants(instance, "F001")
    assert execute(ROLLUPS, instance, partition_key=f"{DAY}|F001").success

    for _ in range(2):
        result = execute(dg.AssetSelection.assets("cohort_week"), instance, partition_key=monday.isoformat())
        assert result.success, failure_messages(result)

    rows = timescale.fetch("SELECT study_id, valid_days, median_steps FROM wearables.cohort_week ORDER BY 1")
    assert rows == [("S1", 1, 7000.0), ("S2", 0, None)]
    prefix = lake.partition_prefix("cohort_week", "all", monday)
    files = sorted(Path(prefix).glob("*.parquet"))
    assert len(files) == 1  # the second run replaced the first one's file
    table = pq.read_table(files[0])
    assert sorted(table.column("study_id").to_pylist()) == ["S1", "S2"]
    assert table.column("week_start").to_pylist() == [monday, monday]
