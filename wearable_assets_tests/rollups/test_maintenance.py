"""``timescale_maintenance`` and its job-health check where the server runs the Apache edition
(the project-local server), and the range merging they rely on.

The Timescale-licensed behaviour (aggregates, compression, failing jobs) is tested in
``test_timescale_licensed.py`` against the server named by ``WEARABLES_TEST_TSL_DSN``.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from wearable_assets.rollups import maintenance
from wearable_assets.serving import queries as api_queries
from wearable_assets.serving.config import ServingConfig
from wearable_assets.serving.routing import RAW_TABLE, Resolution, choose_route
from wearable_assets.storage.ingest_status import record as record_status
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.rollups.runs import execute
from wearable_assets_tests.rollups.sources import FITBIT_ONLY, INDIA, Sources, minutes_of

DAY = date(2026, 11, 10)
UTC = timezone.utc


def _require_apache(timescale: TimescaleResource) -> None:
    license_ = timescale.license()
    if license_ == "timescale":
        pytest.skip("the server under test is Timescale-licensed: its behaviour is tested in test_timescale_licensed.py")


def _load(timescale: TimescaleResource, sources: Sources) -> None:
    for p in (FITBIT_ONLY, INDIA):
        sources.worn(p, DAY, 30)
        with timescale.connect() as conn:
            record_status(conn, p.participant_id, DAY, "google_health", "ok", rows_loaded=90, time_zone=p.time_zone)
            conn.commit()


def test_maintenance_and_job_check_say_why_they_do_nothing_on_apache(
    timescale: TimescaleResource, sources: Sources, instance: dg.DagsterInstance
) -> None:
    _require_apache(timescale)
    _load(timescale, sources)
    result = execute(dg.AssetSelection.assets("timescale_maintenance"), instance)
    assert result.success
    [materialization] = result.asset_materializations_for_node("timescale_maintenance")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["status"] == "skipped" and metadata["license"] == "apache"
    assert "timescaledb.license is 'apache'" in metadata["skipped_reason"]
    # Nothing consumed: moved to a Timescale-licensed server, the next run refreshes these days.
    assert timescale.fetch("SELECT count(*) FROM wearables.maintenance_handled") == [(0,)]

    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "timescale_jobs_healthy" and evaluation.passed
    check = {k: v.value for k, v in evaluation.metadata.items()}
    assert check["license"] == "apache" and check["jobs_checked"] == 0 and check["failed_jobs"] == 0
    assert "no policy or user jobs can exist" in check["note"]
    # TimescaleDB's own jobs exist on Apache too; the note lists each one by id, not judged.
    own = timescale.fetch("SELECT job_id FROM timescaledb_information.jobs ORDER BY job_id")
    assert own and all(job_id < maintenance.FIRST_USER_JOB_ID for (job_id,) in own)
    assert all(f"{job_id} (" in check["note"] for (job_id,) in own)


def test_pending_changes_follow_ingest_status_versions(timescale: TimescaleResource, sources: Sources) -> None:
    """What the maintenance would refresh: every Fitbit participant-day whose status row changed
    since it was handled, with its UTC span widened to whole UTC days (the SQL runs on both
    editions; only the refresh itself needs the Timescale licence)."""
    _load(timescale, sources)
    with timescale.connect() as conn:
        pending = maintenance.pending_changes(conn)
        assert {(p.participant_id, p.local_date) for p in pending} == {("F001", DAY), ("K001", DAY)}
        spans = {p.participant_id: (p.lo, p.hi) for p in pending}
        # New York (UTC-5 in November): local day = 05:00Z .. 05:00Z next day -> UTC days 10th..12th.
        assert spans["F001"] == (datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC))
        # Kolkata (UTC+5:30): local day = 9th 18:30Z .. 10th 18:30Z -> UTC days 9th..11th.
        assert spans["K001"] == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))
        assert maintenance.merge_ranges(list(spans.values())) == [
            (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC))]
        maintenance.mark_handled(conn, pending)
        conn.commit()
        assert maintenance.pending_changes(conn) == []
        # A re-load (new finished_at) of one participant-day makes exactly it pending again.
        record_status(conn, "F001", DAY, "google_health", "ok", rows_loaded=90)
        conn.commit()
        assert [(p.participant_id, p.local_date) for p in maintenance.pending_changes(conn)] == [("F001", DAY)]


def test_merge_ranges_joins_overlapping_and_touching_spans_only() -> None:
    d = [datetime(2026, 11, n, tzinfo=UTC) for n in range(1, 10)]
    assert maintenance.merge_ranges([(d[4], d[6]), (d[0], d[2]), (d[2], d[3]), (d[5], d[7])]) == [
        (d[0], d[3]), (d[4], d[7])]
    assert maintenance.merge_ranges([]) == []
    assert maintenance.merge_ranges([(d[0], d[1]), (d[0], d[1])]) == [(d[0], d[1])]


def test_one_minute_points_come_from_raw_without_the_aggregate(timescale: TimescaleResource, sources: Sources) -> None:
    _require_apache(timescale)
    sources.worn(FITBIT_ONLY, DAY, 5, hr=64.0, steps_per_min=7.0)
    first = minutes_of(FITBIT_ONLY, DAY, 8 * 60, 1)[0]
    participant = FITBIT_ONLY
    with timescale.connect() as conn:
        exists = api_queries.minute_aggregate_exists(conn)
        route = choose_route(Resolution.MINUTE, first, first + timedelta(hours=1), ServingConfig(dsn="unused"),
                             minute_aggregate=exists)
        assert not exists and (route.table, route.from_raw) == (RAW_TABLE, True)
        hr = api_queries.fetch_points(conn, route, participant, "heart_rate", first, first + timedelta(hours=1), 100, 0)
        steps = api_queries.fetch_points(conn, route, participant, "steps", first, first + timedelta(hours=1), 100, 0)
    assert [(p["ts"], p["value"], p["count"]) for p in hr.points] == [
        (first + timedelta(minutes=m), 64.0, 2) for m in range(5)]
    assert [p["value"] for p in steps.points] == [7.0] * 5 and steps.total_count == 5


def test_maintenance_follows_the_hourly_rollup_once(instance: dg.DagsterInstance) -> None:
    """Requested by the automation sensor after intraday_hourly partitions were materialised,
    once for any number of them, and not again until another one is."""
    from wearable_assets.definitions import defs
    from wearable_assets_tests.conftest import add_participants

    add_participants(instance, "P001", "P002")
    maintenance_key, hourly = dg.AssetKey("timescale_maintenance"), dg.AssetKey("intraday_hourly")
    cursor = None

    def requested() -> int:
        nonlocal cursor
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        return result.get_num_requested(maintenance_key)

    assert requested() == 0  # nothing loaded yet
    for key in ("2026-11-10|P001", "2026-11-10|P002", "2026-11-11|P001"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=hourly, partition=key))
    assert requested() == 1
    assert requested() == 0  # handled: not on every tick
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=maintenance_key))
    assert requested() == 0
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=hourly, partition="2026-11-12|P002"))
    assert requested() == 1
