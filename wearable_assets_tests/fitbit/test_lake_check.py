"""The lake check on the local lake (DuckDB): participant-days loaded by the Fitbit assets from the
Google Health simulator pass; a tampered participant-day (a parquet file copied, or deleted) fails,
and only that one."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.lake_checks import CHECK_NAME, FITBIT_TABLES, lake_matches_timescale
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import check_results

from .conftest import DAY, enrol_directly
from .test_assets import ASSETS, resources

PARQUET = ["fitbit", "intraday_parquet"]
P1, P2 = f"{DAY}|P001", f"{DAY}|P002"
RANGE = {"dagster/asset_partition_range_start": P1, "dagster/asset_partition_range_end": P2}
CHECK = lake_matches_timescale(dg.AssetKey(PARQUET), FITBIT_TABLES, destination="filesystem")


def run_check(google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource,
              instance: dg.DagsterInstance) -> dict[str | None, dg.AssetCheckEvaluation]:
    """Only the check, over both participant-days (a ranged run, as a backfill would run it)."""
    result = dg.materialize(ASSETS + [CHECK], selection=dg.AssetSelection.checks(CHECK),
                            resources=resources(google, db, lake), instance=instance, tags=RANGE)
    assert result.success
    assert not result.get_asset_materialization_events()  # the check only reads
    return check_results(result, PARQUET, CHECK_NAME)


def intraday_files(lake: LakeResource, key: str) -> list[Path]:
    pday = ParticipantDay.from_key(key)
    return sorted(Path(lake.partition_prefix("fitbit_intraday", pday.participant_id, pday.day)).glob("*.parquet"))


def test_lake_check_passes_on_loaded_days_and_fails_exactly_the_tampered_one(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, instance: dg.DagsterInstance,
) -> None:
    enrol_directly(google_sim, google_store, "P001", "P002")
    add_participants(instance, "P001", "P002")
    loaded = dg.materialize(ASSETS + [CHECK], resources=resources(google, db, lake), instance=instance, tags=RANGE)
    assert loaded.success
    results = check_results(loaded, PARQUET, CHECK_NAME)
    assert set(results) == {P1, P2}
    for key, evaluation in results.items():
        assert evaluation.passed, (key, evaluation.metadata)
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        pday = ParticipantDay.from_key(key)
        (in_db,), = db.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE participant_id = %s",
                             (pday.participant_id,))
        assert meta["fitbit_intraday/lake_rows"] == meta["fitbit_intraday/timescale_rows"] == in_db > 10000
        assert meta["fitbit_intraday/duplicated_keys"] == 0 and meta["fitbit_intraday/lake_files"] == 1
        for table in ("fitbit_sleep_stages", "fitbit_sleep_sessions"):
            (stored,), = db.fetch(f"SELECT count(*) FROM wearables.{table} WHERE participant_id = %s AND sleep_date = %s",
                                  (pday.participant_id, pday.day))
            assert meta[f"{table}/lake_rows"] == meta[f"{table}/timescale_rows"] == stored
    assert sum(e.metadata["fitbit_sleep_stages/lake_rows"].value for e in results.values()) > 0  # type: ignore[operator]

    # A second copy of P001's intraday file (what a crash between write and cleanup leaves).
    (original,) = intraday_files(lake, P1)
    copy = original.with_name("0." + original.name)
    shutil.copy(original, copy)
    results = run_check(google, db, lake, instance)
    assert results[P2].passed
    bad = results[P1]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in bad.metadata.items()}
    assert meta["fitbit_intraday/lake_rows"] == 2 * meta["fitbit_intraday/timescale_rows"]  # type: ignore[operator]
    assert meta["fitbit_intraday/duplicated_keys"] == meta["fitbit_intraday/timescale_rows"]
    assert meta["fitbit_intraday/lake_files"] == 2
    assert "appear more than once" in str(meta["problems"]) and "fitbit_sleep" not in str(meta["problems"])

    # Repaired, then P002's file deleted: now only P002 fails, with the rows it lacks.
    copy.unlink()
    intraday_files(lake, P2)[0].unlink()
    results = run_check(google, db, lake, instance)
    assert results[P1].passed
    missing = results[P2]
    meta = {k: v.value for k, v in missing.metadata.items()}
    assert not missing.passed and meta["fitbit_intraday/lake_rows"] == 0 and meta["fitbit_intraday/lake_files"] == 0
    assert f"0 rows in the lake, {meta['fitbit_intraday/timescale_rows']} in TimescaleDB" in str(meta["problems"])

    # Re-materialising the participant-day repairs the lake: both pass again.
    again = dg.materialize(ASSETS + [CHECK], resources=resources(google, db, lake), instance=instance,
                           partition_key=P2)
    assert again.success and check_results(again, PARQUET, CHECK_NAME)[P2].passed
    assert all(e.passed for e in run_check(google, db, lake, instance).values())
