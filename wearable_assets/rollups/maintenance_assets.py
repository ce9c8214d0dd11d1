"""``timescale_maintenance``: the TimescaleDB policies' work, done by the pipeline after the loads,
and the check that TimescaleDB's own background jobs are healthy (``maintenance.py`` says why).

Unpartitioned on purpose: what it acts on is not a participant-day. Chunks are UTC days holding
every participant, compression is per chunk, and the aggregates are refreshed over the merged
time ranges of whatever was loaded since the last run — recorded in the database, so a run
handles exactly the changes it finds, however many runs or backfills produced them. It follows
``intraday_hourly``: requested when a partition of it was materialised, once no partition of it
is still running (so after the whole of a day's schedule runs, not once per run).
"""

from typing import Any

import dagster as dg

from wearable_assets.external import OWNERS
from wearable_assets.orchestration.retries import RETRY_POLICY, transient_database_errors
from wearable_assets.rollups import maintenance
from wearable_assets.rollups.assets import GROUP, intraday_hourly
from wearable_assets.storage.resources import TimescaleResource

#: Lines of detail shown in the check's metadata (the counts always cover every job).
MAX_LINES = 50


def after_loads() -> dg.AutomationCondition:
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("after_loads")


@dg.asset(
    owners=OWNERS,
    group_name=GROUP,
    deps=[intraday_hourly],
    retry_policy=RETRY_POLICY,  # idempotent: a retried run redoes only what it had not recorded
    automation_condition=after_loads(),
    kinds={"timescaledb"},
    description="Refreshes the continuous aggregates over the time ranges loaded since its last run, compresses "
    "fitbit_intraday chunks past the compression window and recompresses chunks reloaded since; "
    "TimescaleDB's background jobs are not relied on. Skipped on the Apache edition.",
)
def timescale_maintenance(context: dg.AssetExecutionContext, timescale: TimescaleResource) -> dg.MaterializeResult:
    with transient_database_errors():
        result = maintenance.run_maintenance(timescale)
    if result.skipped_reason:
        context.log.info(f"timescale_maintenance skipped: {result.skipped_reason}")
    else:
        context.log.info(
            f"timescale_maintenance: {result.participant_days} participant-day(s) changed, "
            f"{len(result.ranges)} range(s) x {len(result.aggregates)} aggregate(s) refreshed, "
            f"{len(result.chunks)} chunk(s) compressed/recompressed ({result.bytes_before} -> {result.bytes_after} bytes)")
    return dg.MaterializeResult(metadata=result.metadata())


@dg.asset_check(
    asset=timescale_maintenance,
    description="Fails when a TimescaleDB background job (refresh/compression policy, user job, TimescaleDB's own) "
    "last failed or is overdue, naming the job, its latest error and since when. Passes on the Apache "
    "edition, where no such jobs exist.",
)
def timescale_jobs_healthy(timescale: TimescaleResource) -> dg.AssetCheckResult:
    health = maintenance.job_health(timescale)
    lines = [str(p) for p in health.problems]
    metadata: dict[str, Any] = {
        "license": health.license or "none",
        "jobs_checked": health.jobs_checked,
        "failed_jobs": sum(p.problem == "failed" for p in health.problems),
        "overdue_jobs": sum(p.problem == "overdue" for p in health.problems),
        "problems": dg.MetadataValue.md("\n".join(f"- {line}" for line in lines[:MAX_LINES]) or "none"),
        "job_ids": dg.MetadataValue.json([p.job_id for p in health.problems]),
    }
    if health.note:
        metadata["note"] = health.note
    description = None if health.passed else (
        f"{len(health.problems)} TimescaleDB job(s) failing or overdue; the pipeline's timescale_maintenance does "
        f"their work meanwhile. First: {lines[0]}")[:1000]
    return dg.AssetCheckResult(passed=health.passed, severity=dg.AssetCheckSeverity.ERROR,
                               metadata=metadata, description=description)
