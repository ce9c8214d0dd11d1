"""Continuous aggregates, compression, ``timescale_maintenance`` and the job-health check on a
Timescale-licensed TimescaleDB server.

They run only where ``WEARABLES_TEST_TSL_DSN`` names such a server (a DSN whose role may create
databases; each test gets its own database there). Elsewhere every test is SKIPPED with that
reason (``pytest -rs`` prints it): they never count as passed. A DSN whose server turns out to
run the Apache edition fails loudly instead of skipping.

The aggregates' refresh and compression policies are unscheduled in each test database, so what
the tests see is the pipeline's own maintenance, not a background job that may or may not have
run; the job-health test schedules a job of its own.
"""

import itertools
import os
import random
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import psycopg
import pytest

from wearable_assets import settings
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.rollups import maintenance, refresh
from wearable_assets.roster import Participant
from wearable_assets.serving import queries as api_queries
from wearable_assets.serving.config import ServingConfig
from wearable_assets.serving.routing import MINUTE_TABLE, RAW_TABLE, Resolution, Route, choose_route
from wearable_assets.storage.ingest_status import record as record_status
from wearable_assets.storage.local_server import temporary_database
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.rollups.runs import execute
from wearable_assets_tests.rollups.sources import FITBIT_ONLY, INDIA, INTRADAY_COLUMNS, Sources, local_midnight

TSL_DSN_ENV = "WEARABLES_TEST_TSL_DSN"
SERVER = os.environ.get(TSL_DSN_ENV, "").strip()
pytestmark = pytest.mark.skipif(
    not SERVER,
    reason=f"NOT RUN: {TSL_DSN_ENV} is not set; these tests need a Timescale-licensed TimescaleDB server "
    "(docs/rollups.md, 'Testing on a Timescale-licensed server')",
)

TODAY = datetime.now(timezone.utc).date()
#: Past the 30-day compression window, and well inside it.
OLD_DAY = TODAY - timedelta(days=45)
RECENT_DAY = TODAY - timedelta(days=2)
_databases = itertools.count()


@pytest.fixture
def tsl(monkeypatch: pytest.MonkeyPatch) -> Iterator[TimescaleResource]:
    with temporary_database(SERVER, f"wearables_tsl_{os.getpid()}_{next(_databases)}") as dsn:
        resource = TimescaleResource(dsn=dsn)
        report = resource.migrate()
        if report.license != "timescale":
            pytest.fail(f"{TSL_DSN_ENV} names a server whose timescaledb.license is {report.license!r}, not 'timescale'")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
                         "WHERE job_id >= %s", (maintenance.FIRST_USER_JOB_ID,))
        monkeypatch.setenv(settings.TIMESCALE_DSN_ENV, dsn)
        Sources(resource).participants(FITBIT_ONLY, INDIA)
        yield resource


def _samples(p: Participant, day: date, seed: int, every_s: int = 10) -> list[tuple[Any, ...]]:
    """A participant-day of Fitbit-shaped rows: heart rate every ``every_s`` seconds (a random
    walk) and steps every minute, over the whole local day."""
    rng = random.Random(seed)
    start = local_midnight(p, day)
    end = local_midnight(p, day + timedelta(days=1))
    rows: list[tuple[Any, ...]] = []
    hr, ts = 70.0, start
    while ts < end:
        hr = min(180.0, max(45.0, hr + rng.uniform(-1.5, 1.5)))
        rows.append((p.participant_id, "heart_rate", ts, round(hr), None, "google_health", None))
        if ts.second == 0:
            rows.append((p.participant_id, "steps", ts, float(rng.choice((0, 0, 0, 12, 40, 95))), None,
                         "google_health", None))
        ts += timedelta(seconds=every_s)
    return rows


def _load(tsl: TimescaleResource, p: Participant, day: date, rows: list[tuple[Any, ...]]) -> None:
    """One participant-day replaced the way the Fitbit loader does it: DELETE + COPY of the local
    day and the ingest_status row, in one transaction."""
    with tsl.connect() as conn:
        with conn.transaction():
            tsl.replace_rows("wearables.fitbit_intraday", where="participant_id = %s AND ts >= %s AND ts < %s",
                             params=[p.participant_id, local_midnight(p, day), local_midnight(p, day + timedelta(days=1))],
                             columns=INTRADAY_COLUMNS, rows=rows, conn=conn)
            record_status(conn, p.participant_id, day, "google_health", "ok", rows_loaded=len(rows),
                          time_zone=p.time_zone)


def _rows(tsl: TimescaleResource, p: Participant, day: date) -> list[tuple[Any, ...]]:
    return tsl.fetch(
        "SELECT participant_id, metric, ts, value, utc_offset_min, source, device FROM wearables.fitbit_intraday "
        "WHERE participant_id = %s AND ts >= %s AND ts < %s ORDER BY metric, ts",
        (p.participant_id, local_midnight(p, day), local_midnight(p, day + timedelta(days=1))))


def _chunk_states(tsl: TimescaleResource) -> dict[str, int]:
    return dict(tsl.fetch(
        "SELECT format('%I.%I', c.schema_name, c.table_name), c.status FROM _timescaledb_catalog.chunk c "
        "JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id "
        "WHERE h.schema_name = 'wearables' AND h.table_name = 'fitbit_intraday' AND NOT c.dropped"))


# Every aggregate compared with what it summarises: the 1-minute one with the raw rows, the
# hourly one with wearables.intraday_hourly (hours straddling two participant-days merged), the
# daily one with the raw rows by UTC day. Rows present on one side only count as mismatches.
MISMATCHES = """
WITH agg_1min AS (SELECT participant_id, metric, bucket, n_samples, round(sum_value::numeric, 6) s, min_value, max_value
                    FROM wearables.fitbit_intraday_1min),
     raw_1min AS (SELECT participant_id, metric, time_bucket('1 minute', ts) bucket, count(*) n_samples,
                         round(sum(value)::numeric, 6) s, min(value) min_value, max(value) max_value
                    FROM wearables.fitbit_intraday GROUP BY 1, 2, 3),
     agg_1h AS (SELECT participant_id, metric, bucket, n_samples, round(sum_value::numeric, 6) s, min_value, max_value
                  FROM wearables.fitbit_intraday_1h),
     hourly AS (SELECT participant_id, metric, bucket, sum(n_samples)::numeric n_samples,
                       round(sum(sum_value)::numeric, 6) s, min(min_value) min_value, max(max_value) max_value
                  FROM wearables.intraday_hourly GROUP BY 1, 2, 3),
     agg_1d AS (SELECT participant_id, metric, bucket, n_samples, round(sum_value::numeric, 6) s, min_value, max_value
                  FROM wearables.fitbit_intraday_1d),
     raw_1d AS (SELECT participant_id, metric, time_bucket('1 day', ts) bucket, count(*) n_samples,
                       round(sum(value)::numeric, 6) s, min(value) min_value, max(value) max_value
                  FROM wearables.fitbit_intraday GROUP BY 1, 2, 3)
SELECT '1min' AS what, count(*) FROM ((TABLE agg_1min EXCEPT TABLE raw_1min) UNION ALL (TABLE raw_1min EXCEPT TABLE agg_1min)) d
UNION ALL
SELECT '1h', count(*) FROM ((TABLE agg_1h EXCEPT TABLE hourly) UNION ALL (TABLE hourly EXCEPT TABLE agg_1h)) d
UNION ALL
SELECT '1d', count(*) FROM ((TABLE agg_1d EXCEPT TABLE raw_1d) UNION ALL (TABLE raw_1d EXCEPT TABLE agg_1d)) d"""


def _aggregates_match(tsl: TimescaleResource) -> dict[str, int]:
    counts = dict(tsl.fetch("SELECT 'rows_1min', count(*) FROM wearables.fitbit_intraday_1min UNION ALL "
                            "SELECT 'rows_1h', count(*) FROM wearables.fitbit_intraday_1h"))
    assert counts["rows_1min"] > 0 and counts["rows_1h"] > 0
    return dict(tsl.fetch(MISMATCHES))


NO_MISMATCH = {"1min": 0, "1h": 0, "1d": 0}


def _roll_up(tsl: TimescaleResource, *days: ParticipantDay) -> maintenance.MaintenanceResult:
    refresh.refresh_intraday_hourly(tsl, list(days))
    return maintenance.run_maintenance(tsl)


def test_aggregates_equal_intraday_hourly_after_loads_and_reloads(tsl: TimescaleResource) -> None:
    days = [ParticipantDay(d, p.participant_id) for p in (FITBIT_ONLY, INDIA) for d in (OLD_DAY, RECENT_DAY)]
    for i, p in enumerate((FITBIT_ONLY, INDIA)):
        for day in (OLD_DAY, RECENT_DAY):
            _load(tsl, p, day, _samples(p, day, seed=i * 1000 + day.toordinal()))
    first = _roll_up(tsl, *days)
    assert first.skipped_reason is None and first.participant_days == 4
    assert first.aggregates == list(refresh.CONTINUOUS_AGGREGATES)
    assert _aggregates_match(tsl) == NO_MISMATCH
    assert first.chunks and all(c.action == "compress" for c in first.chunks)

    # Re-pull of the old day with different values and fewer samples (into compressed chunks),
    # and of the recent day (uncompressed): only those two participant-days are refreshed.
    _load(tsl, FITBIT_ONLY, OLD_DAY, _samples(FITBIT_ONLY, OLD_DAY, seed=7, every_s=30))
    _load(tsl, INDIA, RECENT_DAY, _samples(INDIA, RECENT_DAY, seed=8, every_s=20))
    second = _roll_up(tsl, ParticipantDay(OLD_DAY, "F001"), ParticipantDay(RECENT_DAY, "K001"))
    assert second.participant_days == 2
    assert _aggregates_match(tsl) == NO_MISMATCH
    assert {c.action for c in second.chunks} == {"recompress"}
    assert all(status == 1 for chunk, status in _chunk_states(tsl).items()
               if chunk in {c.chunk for c in first.chunks})


def test_compression_ratio(tsl: TimescaleResource) -> None:
    """A participant-day of 1-s heart rate (86,400 samples) and 1-min steps, compressed by the
    maintenance: the bytes it reports are the chunks' sizes before and after, as TimescaleDB
    measures them."""
    rows = _samples(FITBIT_ONLY, OLD_DAY, seed=42, every_s=1)
    _load(tsl, FITBIT_ONLY, OLD_DAY, rows)
    result = _roll_up(tsl, ParticipantDay(OLD_DAY, "F001"))
    assert [c.action for c in result.chunks] == ["compress"] * len(result.chunks) and len(result.chunks) == 2
    stats = tsl.fetch("SELECT sum(before_compression_total_bytes)::bigint, sum(after_compression_total_bytes)::bigint "
                      "FROM chunk_compression_stats('wearables.fitbit_intraday') WHERE compression_status = 'Compressed'")
    ratio = result.bytes_before / result.bytes_after
    print(f"\n{len(rows)} rows: {result.bytes_before} -> {result.bytes_after} bytes, ratio {ratio:.1f}x "
          f"(chunk_compression_stats: {stats[0][0]} -> {stats[0][1]}), {result.seconds:.2f} s")
    # chunks_detailed_size counts a few pages of catalog/toast the stats leave out: same order.
    assert abs(result.bytes_after - stats[0][1]) <= 0.1 * stats[0][1] + 65536
    assert ratio > 5, f"1-s heart rate compressed only {ratio:.1f}x"
    assert _rows(tsl, FITBIT_ONLY, OLD_DAY) == sorted(
        [tuple(r) for r in rows], key=lambda r: (r[1], r[2]))  # decompresses to exactly what was loaded


def test_reload_into_a_compressed_chunk_gives_identical_rows_and_is_recompressed(tsl: TimescaleResource) -> None:
    rows = _samples(INDIA, OLD_DAY, seed=3)
    _load(tsl, INDIA, OLD_DAY, rows)
    first = _roll_up(tsl, ParticipantDay(OLD_DAY, "K001"))
    compressed = {c.chunk for c in first.chunks}
    assert compressed and all(_chunk_states(tsl)[c] == 1 for c in compressed)
    before = _rows(tsl, INDIA, OLD_DAY)

    _load(tsl, INDIA, OLD_DAY, rows)  # the same participant-day pulled again
    assert _rows(tsl, INDIA, OLD_DAY) == before
    partial = {c for c, status in _chunk_states(tsl).items() if c in compressed and status & 8}
    assert partial == compressed, "a reload into compressed chunks leaves them partially compressed"

    second = maintenance.run_maintenance(tsl)
    assert {(c.chunk, c.action) for c in second.chunks} == {(c, "recompress") for c in compressed}
    # The reload's rows went into each chunk's row part; recompression gives the space back.
    assert all(c.bytes_after < c.bytes_before for c in second.chunks), second.chunks
    assert all(_chunk_states(tsl)[c] == 1 for c in compressed)
    assert _rows(tsl, INDIA, OLD_DAY) == before
    assert _aggregates_match(tsl) == NO_MISMATCH

    third = maintenance.run_maintenance(tsl)  # idempotent: nothing left to do
    assert (third.participant_days, third.ranges, third.chunks) == (0, [], [])


def test_maintenance_asset_records_its_work(tsl: TimescaleResource, instance: dg.DagsterInstance) -> None:
    _load(tsl, FITBIT_ONLY, OLD_DAY, _samples(FITBIT_ONLY, OLD_DAY, seed=5))
    _load(tsl, FITBIT_ONLY, RECENT_DAY, _samples(FITBIT_ONLY, RECENT_DAY, seed=6))
    refresh.refresh_intraday_hourly(tsl, [ParticipantDay(OLD_DAY, "F001"), ParticipantDay(RECENT_DAY, "F001")])
    result = execute(dg.AssetSelection.assets("timescale_maintenance"), instance)
    assert result.success
    [materialization] = result.asset_materializations_for_node("timescale_maintenance")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["status"] == "ok" and metadata["participant_days_changed"] == 2
    assert metadata["continuous_aggregates"] == ", ".join(refresh.CONTINUOUS_AGGREGATES)
    compressed = {c for c, status in _chunk_states(tsl).items() if status & 1}
    assert metadata["chunks_compressed"] == metadata["chunks_touched"] == len(compressed) == 2  # the old day's
    assert 0 < metadata["bytes_after"] < metadata["bytes_before"]
    assert _aggregates_match(tsl) == NO_MISMATCH

    [evaluation] = result.get_asset_check_evaluations()
    health = maintenance.job_health(tsl)
    check = {k: v.value for k, v in evaluation.metadata.items()}
    assert evaluation.passed == health.passed and check["jobs_checked"] == health.jobs_checked > 0
    assert check["job_ids"] == [p.job_id for p in health.problems]

    again = execute(dg.AssetSelection.assets("timescale_maintenance"), instance)
    [materialization] = again.asset_materializations_for_node("timescale_maintenance")
    assert {k: materialization.metadata[k].value for k in ("participant_days_changed", "chunks_touched")} == {
        "participant_days_changed": 0, "chunks_touched": 0}


def test_job_health_fails_on_a_failing_job(tsl: TimescaleResource) -> None:
    marker = f"made to fail {os.getpid()}-{time.monotonic_ns()}"
    with tsl.connect(autocommit=True) as conn:
        conn.execute(
            "CREATE PROCEDURE public.failing_job(job_id int, config jsonb) LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{marker}'; END $$")
        (job_id,) = conn.execute(  # type: ignore[misc]
            "SELECT add_job('public.failing_job', interval '1 hour', initial_start => now())").fetchone()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = tsl.fetch("SELECT total_runs FROM timescaledb_information.job_stats WHERE job_id = %s", (job_id,))
        if runs and runs[0][0]:
            break
        time.sleep(1)
    else:
        pytest.fail(f"the background scheduler did not run job {job_id} within 120 s")
    health = maintenance.job_health(tsl)
    assert not health.passed
    [problem] = [p for p in health.problems if p.job_id == job_id]
    assert problem.problem == "failed" and problem.last_error == marker and problem.failures == 1
    assert problem.proc == "public.failing_job" and problem.last_success is None
    (first_error,) = tsl.fetch("SELECT min(start_time) FROM timescaledb_information.job_errors WHERE job_id = %s",
                               (job_id,))
    assert problem.since == first_error[0]
    assert f"job {job_id} (" in str(problem) and marker in str(problem)

    tsl.execute("SELECT delete_job(%s)", (job_id,))
    assert job_id not in {p.job_id for p in maintenance.job_health(tsl).problems}


def test_one_minute_requests_are_served_from_the_aggregate(tsl: TimescaleResource) -> None:
    _load(tsl, INDIA, RECENT_DAY, _samples(INDIA, RECENT_DAY, seed=11))
    maintenance.run_maintenance(tsl)
    start = local_midnight(INDIA, RECENT_DAY) + timedelta(hours=9, seconds=30)
    end = start + timedelta(hours=3)
    participant = INDIA
    config = ServingConfig(dsn="unused")
    with tsl.connect() as conn:
        route = choose_route(Resolution.MINUTE, start, end, config,
                             minute_aggregate=api_queries.minute_aggregate_exists(conn))
        assert (route.table, route.from_raw) == (MINUTE_TABLE, False)
        for metric in ("heart_rate", "steps"):
            served = api_queries.fetch_points(conn, route, participant, metric, start, end, 1000, 0)
            from_raw = api_queries.fetch_points(conn, Route(Resolution.MINUTE, RAW_TABLE, True), participant, metric,
                                                start, end, 1000, 0)
            assert served.total_count == from_raw.total_count == 181  # partial first and last minutes included
            assert [(p["ts"], round(p["value"], 9), p["min"], p["max"], p["count"]) for p in served.points] == [
                (p["ts"], round(p["value"], 9), p["min"], p["max"], p["count"]) for p in from_raw.points]


def test_job_health_fails_on_an_overdue_job(tsl: TimescaleResource) -> None:
    """A scheduled job whose start lies further in the past than its interval (at least an hour)
    is overdue — here because this database's scheduler is stopped, as when the background
    workers are exhausted or disabled. One only minutes late is not."""
    with tsl.connect(autocommit=True) as conn:
        conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
        try:
            conn.execute("CREATE PROCEDURE public.idle_job(job_id int, config jsonb) LANGUAGE plpgsql AS "
                         "$$ BEGIN NULL; END $$")
            late, slightly = (conn.execute(  # type: ignore[index]
                "SELECT add_job('public.idle_job', interval '1 hour', initial_start => now() - %s::interval)",
                (behind,)).fetchone()[0] for behind in ("3 hours", "10 minutes"))
            health = maintenance.job_health(tsl)
            by_id = {p.job_id: p for p in health.problems}
            assert not health.passed and slightly not in by_id
            problem = by_id[late]
            (next_start,) = conn.execute("SELECT next_start FROM timescaledb_information.job_stats "
                                         "WHERE job_id = %s", (late,)).fetchone()  # type: ignore[misc]
            assert (problem.problem, problem.since, problem.failures, problem.last_error) == (
                "overdue", next_start, 0, None)
            assert datetime.now(timezone.utc) - next_start > timedelta(hours=2, minutes=59)
        finally:
            conn.execute("SELECT _timescaledb_functions.start_background_workers()")


def test_reloads_racing_the_maintenance_lose_nothing(tsl: TimescaleResource) -> None:
    """Re-pulls of an old participant-day (into compressed chunks) while maintenances run: every
    round ends with the rows of the last load, fully compressed chunks and aggregates equal to
    the raw rows — a load that commits while a maintenance runs is picked up by the next one."""
    versions = [_samples(INDIA, OLD_DAY, seed=100 + v, every_s=5) for v in range(3)]
    _load(tsl, INDIA, OLD_DAY, versions[0])
    maintenance.run_maintenance(tsl)
    errors: list[BaseException] = []

    def reload(rows: list[tuple[Any, ...]]) -> None:
        try:
            _load(tsl, INDIA, OLD_DAY, rows)
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    for round_ in range(6):
        last = versions[(round_ + 1) % len(versions)]
        loaders = [threading.Thread(target=reload, args=(versions[round_ % len(versions)],)),
                   threading.Thread(target=reload, args=(last,))]
        loaders[0].start()
        during = maintenance.run_maintenance(tsl)  # races the first load
        loaders[0].join()
        loaders[1].start()
        loaders[1].join()
        assert not errors, errors
        assert during.skipped_reason is None
        after = _roll_up(tsl, ParticipantDay(OLD_DAY, "K001"))
        assert after.participant_days <= 1
        assert _rows(tsl, INDIA, OLD_DAY) == sorted([tuple(r) for r in last], key=lambda r: (r[1], r[2]))
        assert all(status == 1 for status in _chunk_states(tsl).values()), _chunk_states(tsl)
        assert _aggregates_match(tsl) == NO_MISMATCH
        assert maintenance.run_maintenance(tsl).participant_days == 0
