"""The data-quality checks, run as Dagster runs them (check steps only, on rows already loaded)."""

import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from wearable_assets import settings
from wearable_assets.partitions import participant_day_partitions
from wearable_assets.rollups import checks
from wearable_assets.storage.lake import PartitionTable
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.rollups.runs import execute, failure_messages
from wearable_assets_tests.rollups.sources import (
    ACTIGRAPH_ONLY,
    BOTH,
    FITBIT_ONLY,
    Sources,
    local_midnight,
    minutes_of,
)

DAY = date(2026, 11, 3)


def run_check(check: dg.AssetChecksDefinition, instance: dg.DagsterInstance, key: str) -> dg.AssetCheckEvaluation:
    result = execute(dg.AssetSelection.checks(check), instance, partition_key=key,
                     partitions_def=participant_day_partitions)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 1, failure_messages(result)
    assert evaluations[0].partition == key
    return evaluations[0]


def test_fitbit_values_plausible_reports_quarantined_and_stored_values(
    sources: Sources, timescale: TimescaleResource, instance: dg.DagsterInstance
) -> None:
    add_participants(instance, "F001", "A001")
    key = f"{DAY}|F001"
    sources.worn(FITBIT_ONLY, DAY, 30, hr=72)
    sources.intraday(FITBIT_ONLY, "heart_rate", minutes_of(FITBIT_ONLY, DAY, 600, 2), [25, 250])  # bounds included
    ok = run_check(checks.fitbit_values_plausible, instance, key)
    assert ok.passed and not ok.blocking

    # What a load quarantined, and samples stored before the rules existed.
    sources.quarantined(FITBIT_ONLY, DAY, "fitbit", "steps", [-500, 1e12])
    sources.intraday(FITBIT_ONLY, "resting_heart_rate", [local_midnight(FITBIT_ONLY, DAY)], 24)
    sources.intraday(FITBIT_ONLY, "heart_rate", minutes_of(FITBIT_ONLY, DAY, 700, 3), [251, 300, 0])
    bad = run_check(checks.fitbit_values_plausible, instance, key)
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.WARN and not bad.blocking
    reasons = bad.metadata["reasons"].value
    assert reasons[0] == (
        "fitbit steps: 2 value(s) quarantined (-500..1e+12) by rule '0 <= steps <= 300 count' v1, "
        "e.g. -500 count is below the minimum of 0 count")
    assert any("3 heart_rate sample(s) in fitbit_intraday outside 25 <= heart_rate <= 250 bpm (min 0, max 300)" in r
               for r in reasons)
    assert any("1 resting_heart_rate sample(s)" in r for r in reasons)
    # ActiGraph quarantine is the other check's business.
    assert run_check(checks.actigraph_values_plausible, instance, f"{DAY}|A001").passed


def _intraday_table(rows: int) -> pa.Table:
    start = datetime(2026, 11, 3, 13, tzinfo=timezone.utc)
    return pa.table({
        "participant_id": ["F001"] * rows,
        "metric": ["steps"] * rows,
        "ts": pa.array([start + timedelta(minutes=i) for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "value": [1.0] * rows,
    })


def test_no_duplicates_in_the_lake(lake: LakeResource, timescale: TimescaleResource, instance: dg.DagsterInstance) -> None:
    add_participants(instance, "F001")
    key = f"{DAY}|F001"
    assert run_check(checks.no_duplicate_samples_in_lake, instance, key).passed  # nothing landed yet

    table = PartitionTable(checks.LAKE_INTRADAY_TABLE, _intraday_table(5), {"participant_id": "F001"})
    lake.write_partition("F001", DAY, [table])
    lake.write_partition("F001", DAY, [table])  # a re-run replaces
    clean = run_check(checks.no_duplicate_samples_in_lake, instance, key)
    assert clean.passed and clean.metadata["rows_checked"].value == 5

    # A crash between writing a new load and deleting the old one leaves both behind.
    (only,) = Path(lake.partition_prefix(checks.LAKE_INTRADAY_TABLE, "F001", DAY)).glob("*.parquet")
    shutil.copy(only, only.with_name("1700000000.0.parquet"))
    dirty = run_check(checks.no_duplicate_samples_in_lake, instance, key)
    assert not dirty.passed
    assert (dirty.metadata["rows_checked"].value, dirty.metadata["duplicated_keys"].value) == (10, 5)


def test_actigraph_day_attribution(sources: Sources, instance: dg.DagsterInstance) -> None:
    add_participants(instance, "A001")
    right = DAY
    sources.actigraph(ACTIGRAPH_ONLY, right, wear=700)  # record date = Brisbane midnight as a UTC instant
    assert run_check(checks.actigraph_local_date, instance, f"{right}|A001").passed

    # A loader that took the UTC calendar date of "2026-11-03T14:00:00+00:00" (midnight of the 4th in
    # Brisbane) files the day one day early.
    wrong = DAY
    sources.timescale.execute("DELETE FROM wearables.actigraph_daily_statistics")
    next_midnight = local_midnight(ACTIGRAPH_ONLY, DAY + timedelta(days=1))
    sources.actigraph(ACTIGRAPH_ONLY, wrong, wear=700, record_date=next_midnight.astimezone(timezone.utc).isoformat(),
                      first_epoch=next_midnight + timedelta(hours=7))
    result = run_check(checks.actigraph_local_date, instance, f"{wrong}|A001")
    assert not result.passed and result.metadata["misattributed_rows"].value == 1
    assert "is local 2026-11-04" in result.metadata["detail"].value

    # Naive record dates are the subject's local midnight already.
    sources.timescale.execute("DELETE FROM wearables.actigraph_daily_statistics")
    sources.actigraph(ACTIGRAPH_ONLY, right, wear=700, record_date=f"{right}T00:00:00")
    assert run_check(checks.actigraph_local_date, instance, f"{right}|A001").passed


def test_completeness_warns_with_the_reason(sources: Sources, instance: dg.DagsterInstance) -> None:
    add_participants(instance, "F001")
    sources.status(FITBIT_ONLY, DAY, "google_health", "needs_reconsent", detail="refresh token revoked")
    key = f"{DAY}|F001"
    assert execute(dg.AssetSelection.assets("participant_day_summary").without_checks(), instance,
                   partition_key=key).success
    result = run_check(checks.participant_day_complete, instance, key)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["reason"].value == "fitbit_needs_reconsent"
    assert "refresh token revoked" in result.metadata["detail"].value


def test_freshness_compares_the_last_device_sync_with_today(
    sources: Sources, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_participants(instance, "B001")
    now = datetime.now(timezone.utc)
    today = now.date()
    sources.status(BOTH, today - timedelta(days=1), "fitbit_legacy", "ok", last_sync=now - timedelta(hours=5))
    sources.status(BOTH, today - timedelta(days=6), "fitbit_legacy", "ok", last_sync=now - timedelta(days=5))
    key = f"{today - timedelta(days=6)}|B001"

    result = run_check(checks.device_freshness, instance, key)
    # Fitbit synced 5 hours ago; the CentrePoint subject never reported a sync.
    assert not result.passed and result.metadata["devices_checked"].value == 2
    assert result.metadata["stale_devices"].value == 1
    assert "B001 centrepoint: no device sync time known (never ingested)" in result.metadata["detail"].value

    sources.status(BOTH, today - timedelta(days=1), "centrepoint", "ok", last_sync=now - timedelta(days=4))
    monkeypatch.setenv(settings.FRESHNESS_ENV, "5")
    assert run_check(checks.device_freshness, instance, key).passed
    monkeypatch.setenv(settings.FRESHNESS_ENV, "2")
    stale = run_check(checks.device_freshness, instance, key)
    assert "B001 centrepoint: last synced" in stale.metadata["detail"].value and "4 d" in stale.metadata["detail"].value
