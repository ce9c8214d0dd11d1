"""Late data: rollups follow re-materialised upstream participant-days, past days included.

Upstream events are recorded with ``report_runless_asset_event`` (what an external loader or a
finished run leaves in the event log); the real definitions' automation conditions are evaluated
as the ``rollups_automation`` sensor would on its ticks.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import pytest

from wearable_assets.definitions import defs
from wearable_assets.partitions import participant_day_partitions
from wearable_assets.rollups.checks import fitbit_values_plausible
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.rollups.runs import execute
from wearable_assets_tests.rollups.sources import FITBIT_ONLY, Sources

INTRADAY = dg.AssetKey(["fitbit", "intraday"])
ACTIGRAPH = dg.AssetKey(["actigraph", "daily_statistics"])
HOURLY = dg.AssetKey("intraday_hourly")
SUMMARY = dg.AssetKey("participant_day_summary")
WEEK = dg.AssetKey("cohort_week")
DAY = date(2026, 11, 3)


class Ticks:
    """Successive automation evaluations sharing a cursor, like the sensor's ticks."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def tick(self) -> dict[dg.AssetKey, set[str]]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return {
            key: set(result.get_requested_partitions(key))
            for key in (HOURLY, SUMMARY, WEEK)
            if result.get_requested_partitions(key)
        }

    def materialize(self, key: dg.AssetKey, partition: str) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


@pytest.fixture
def ticks(instance: dg.DagsterInstance) -> Iterator[Ticks]:
    add_participants(instance, "P001", "P002", "F001")
    t = Ticks(instance)
    assert t.tick() == {}  # first evaluation: nothing happened yet
    yield t


def test_a_backfilled_past_day_is_rolled_up_and_then_its_week(ticks: Ticks) -> None:
    old = "2025-03-05|P002"  # long outside any "latest time window"
    ticks.materialize(INTRADAY, old)
    assert ticks.tick() == {HOURLY: {old}, SUMMARY: {old}}
    assert ticks.tick() == {}  # requested once, not on every tick

    ticks.materialize(HOURLY, old)
    ticks.materialize(SUMMARY, old)
    assert ticks.tick() == {WEEK: {"2025-03-03"}}  # the ISO week (Monday start) holding that day


def test_each_participant_is_rolled_up_as_it_arrives(ticks: Ticks) -> None:
    # One participant never syncing must not hold back the others (eager() would wait for all).
    ticks.materialize(ACTIGRAPH, "2026-11-03|P001")
    assert ticks.tick() == {SUMMARY: {"2026-11-03|P001"}}
    ticks.materialize(INTRADAY, "2026-11-03|P002")
    assert ticks.tick() == {HOURLY: {"2026-11-03|P002"}, SUMMARY: {"2026-11-03|P002"}}


def test_rollups_done_in_the_same_run_are_not_requested_again(ticks: Ticks) -> None:
    key = "2026-11-04|P001"
    for asset in (INTRADAY, HOURLY, SUMMARY):
        ticks.materialize(asset, key)
    assert ticks.tick() == {WEEK: {"2026-11-02"}}


def run_plausibility_check(ticks: Ticks, key: str) -> dg.AssetCheckEvaluation:
    """The check in a real run, so its result is tied to the partition's latest materialization."""
    result = execute(dg.AssetSelection.checks(fitbit_values_plausible), ticks.instance, partition_key=key,
                     partitions_def=participant_day_partitions)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_implausible_values_do_not_hold_the_rollups_back(ticks: Ticks, sources: Sources) -> None:
    key = f"{DAY}|F001"
    sources.worn(FITBIT_ONLY, DAY, 30, hr=300)  # stored around the loader: every heart-rate sample implausible
    ticks.materialize(INTRADAY, key)
    evaluation = run_plausibility_check(ticks, key)
    assert not evaluation.passed and not evaluation.blocking
    # The rollups follow anyway (they leave those samples out), as for any other participant-day.
    assert ticks.tick() == {HOURLY: {key}, SUMMARY: {key}}


def test_the_automation_sensor_is_explicit_and_running() -> None:
    sensors = {s.name: s for s in defs.get_repository_def().sensor_defs}
    assert "default_automation_condition_sensor" not in sensors
    sensor = sensors["rollups_automation"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
