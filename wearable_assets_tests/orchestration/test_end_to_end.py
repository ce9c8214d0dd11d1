"""Simulators -> Fitbit and ActiGraph assets -> TimescaleDB and the lake -> checks -> rollups,
in the ranged runs the daily schedule sends, through the project's real definitions."""

import json
from pathlib import Path

import dagster as dg

from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.orchestration.jobs import PARTICIPANT_DAY_SELECTION
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.stack import SimulatorStack
from wearable_assets_tests.orchestration.conftest import synced_day
from wearable_assets_tests.rollups.runs import execute, failure_messages, materialized_keys

COUNTS = {
    "fitbit_intraday": "SELECT count(*) FROM wearables.fitbit_intraday",
    "actigraph_daily_statistics": "SELECT count(*) FROM wearables.actigraph_daily_statistics",
    "intraday_hourly": "SELECT count(*) FROM wearables.intraday_hourly",
    "participant_day_summary": "SELECT count(*) FROM wearables.participant_day_summary",
    "ingest_status": "SELECT count(*) FROM wearables.ingest_status",
}


def lake_files(lake: LakeResource) -> list[Path]:
    return sorted(Path(lake.url).glob("wearables/fitbit_intraday/participant_id=*/date=*/*.parquet"))


def counts(timescale: TimescaleResource) -> dict[str, int]:
    return {name: timescale.fetch(query)[0][0] for name, query in COUNTS.items()}


def test_a_ranged_run_carries_participant_days_from_the_apis_to_the_rollups(
    stack: SimulatorStack, timescale: TimescaleResource, lake: LakeResource, demo_instance: dg.DagsterInstance
) -> None:
    day = synced_day()
    keys = [f"{day}|P001", f"{day}|P002"]  # one day x a participant range: a rectangle, as the schedule sends

    result = execute(PARTICIPANT_DAY_SELECTION, demo_instance, partition_range=(keys[0], keys[1]))

    assert result.success, failure_messages(result)
    for asset in ("fitbit/intraday", "actigraph/daily_statistics", "intraday_hourly", "participant_day_summary"):
        assert materialized_keys(result, asset) == keys
    # Every check has one result per participant-day, and they all pass.
    evaluations = result.get_asset_check_evaluations()
    by_check: dict[str, set[str | None]] = {}
    for e in evaluations:
        by_check.setdefault(e.check_name, set()).add(e.partition)
        if e.check_name in ("values_plausible", "no_duplicate_samples_in_lake", "actigraph_local_date",
                            "participant_day_outcome", "lake_matches_timescale"):
            assert e.passed, (e.asset_key, e.check_name, e.partition, e.description)
    assert all(partitions == set(keys) for partitions in by_check.values()), by_check
    summaries = timescale.fetch(
        "SELECT participant_id, local_date, valid_day, completeness_reason, fitbit_wear_minutes, "
        "actigraph_wear_minutes, steps, hr_mean FROM wearables.participant_day_summary ORDER BY 1, 2")
    assert [(r[0], r[1]) for r in summaries] == [("P001", day), ("P002", day)]
    for pid, d, valid, reason, fitbit_wear, actigraph_wear, steps, hr_mean in summaries:
        assert fitbit_wear > 0 and actigraph_wear is not None and steps > 0 and 30 < hr_mean < 200, (pid, d)
        assert valid == (reason in ("complete", "true_zero")), (pid, d, reason)
    # The hourly rollup adds up to the raw samples it came from.
    raw_steps, hourly_steps, summary_steps = timescale.fetch(
        """SELECT (SELECT sum(value) FROM wearables.fitbit_intraday WHERE metric = 'steps'),
                  (SELECT sum(sum_value) FROM wearables.intraday_hourly WHERE metric = 'steps'),
                  (SELECT sum(steps) FROM wearables.participant_day_summary)""")[0]
    assert raw_steps > 0 and raw_steps == hourly_steps == summary_steps
    assert len(lake_files(lake)) == 2

    # The schedule re-pulls these days tomorrow: a re-run replaces, never duplicates.
    before = counts(timescale)
    again = execute(PARTICIPANT_DAY_SELECTION, demo_instance, partition_range=(keys[0], keys[1]))
    assert again.success, failure_messages(again)
    assert counts(timescale) == before
    assert len(lake_files(lake)) == 2


def test_an_implausible_heart_rate_is_quarantined_and_the_rollups_carry_on(
    stack: SimulatorStack, timescale: TimescaleResource, lake: LakeResource, demo_instance: dg.DagsterInstance
) -> None:
    day = synced_day()
    key = f"{day}|P001"
    landed = execute(dg.AssetSelection.assets(dg.AssetKey(["fitbit", "raw_payloads"])), demo_instance,
                     partition_key=key)
    assert landed.success, failure_messages(landed)
    # A device glitch: one sample of 300 bpm in the payload exactly as the API returned it.
    manifest = fitbit_manifest.read_manifest(lake, ParticipantDay(day, "P001"))
    assert manifest is not None
    name = fitbit_manifest.stored_name(manifest, "heart-rate.list.p000")
    payload = json.loads(lake.read_raw("fitbit", "P001", day, name))
    payload["dataPoints"][0]["heartRate"]["beatsPerMinute"] = "300"
    lake.land_raw("fitbit", "P001", day, name, payload)

    result = execute(dg.AssetSelection.assets(dg.AssetKey(["fitbit", "intraday"]), "intraday_hourly",
                                              "participant_day_summary"), demo_instance, partition_key=key)

    assert result.success, failure_messages(result)
    check = next(e for e in result.get_asset_check_evaluations()
                 if e.check_name == "values_plausible" and e.asset_key == dg.AssetKey(["fitbit", "intraday"]))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "heart_rate: 1 value(s) quarantined (300) by rule '25 <= heart_rate <= 250 bpm'" in str(
        check.metadata["reasons"].value)
    for asset in ("fitbit/intraday", "intraday_hourly", "participant_day_summary"):
        assert materialized_keys(result, asset) == [key]
    assert timescale.fetch("SELECT max(value) FROM wearables.fitbit_intraday WHERE metric = 'heart_rate'")[0][0] < 300
    assert timescale.fetch("SELECT max(max_value) FROM wearables.intraday_hourly WHERE metric = 'heart_rate'")[0][0] < 300
    assert timescale.fetch("SELECT completeness_reason, fitbit_status, quarantined_values "
                           "FROM wearables.participant_day_summary") == [("fitbit_implausible", "implausible", 1)]
