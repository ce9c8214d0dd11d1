"""The rollup assets: hourly intraday, the participant-day summary, and the cohort week.

They read what the source assets loaded into TimescaleDB (``deps``, no data passing) and
replace their own partitions' rows with one SQL statement per table (``refresh.py``). A ranged
run (backfill, schedule) rolls up all its participant-days in one transaction per table, and
each participant-day's partition then records its own numbers (``wearable_assets.outcomes``):
hours written, the summary's verdict and headline values, which the UI plots by partition.
``automation.follow_upstream`` re-runs a partition whenever its upstream partition changes.

Implausible values never block a rollup: the loaders quarantine them (``plausibility``), and
the rollup SQL leaves out any that are still stored, so one bad participant-day cannot hold back
the other participant-days of a ranged run. The ``values_plausible`` checks report them.
"""


from datetime import date
from typing import Any

import dagster as dg
import pyarrow as pa

from wearable_assets.external import OWNERS
from wearable_assets.orchestration.retries import RETRY_POLICY, transient_database_errors
from wearable_assets.outcomes import PartitionOutcome, report
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.partitions import (
    participant_day_backfill_policy,
    participant_day_partitions,
    partition_days,
    weekly_partitions,
)
from wearable_assets.rollups import queries, refresh
from wearable_assets.rollups.automation import follow_upstream
from wearable_assets.storage.lake import PartitionTable
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale

GROUP = "rollups"
FITBIT_INTRADAY = dg.AssetKey(["fitbit", "intraday"])
ACTIGRAPH_DAILY = dg.AssetKey(["actigraph", "daily_statistics"])
#: The policy every participant-day asset shares: a rollup is one SQL statement over any number of
#: participant-days, but a larger batch here than upstream would only make Dagster's backfill
#: dialog warn about varying policies and split by the smallest anyway.
BACKFILL_POLICY = participant_day_backfill_policy
#: The lake's layout is per participant-day; cohort weeks sit under this placeholder participant.
COHORT_LAKE_PARTICIPANT = "all"




def _aggregate_note(context: dg.AssetExecutionContext, result: refresh.AggregateRefresh) -> dict[str, Any]:
    if result.skipped_reason:
        context.log.info(result.skipped_reason)
        return {"continuous_aggregates": result.skipped_reason}
    return {"continuous_aggregates": f"refreshed {', '.join(result.refreshed)}"}


@dg.asset(
    owners=OWNERS,
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    deps=[FITBIT_INTRADAY],
    automation_condition=follow_upstream(),
    backfill_policy=BACKFILL_POLICY,
    kinds={"timescaledb"},
    description="Hourly mean/min/max/count/sum per participant, metric and UTC hour (local hour kept), over "
    "plausible values: wearables.intraday_hourly.",
)
def intraday_hourly(context: dg.AssetExecutionContext, timescale: TimescaleResource) -> Any:
    with transient_database_errors():
        days = partition_days(context)
        result = refresh.refresh_intraday_hourly(timescale, days)
        context.log.info(f"intraday_hourly: {result.deleted} row(s) deleted, {result.inserted} written")
        aggregates = _aggregate_note(context, refresh.refresh_continuous_aggregates(timescale, days))
        outcomes = [
            PartitionOutcome(ParticipantDay(day, pid).key, "ok" if hours else "no_data",
                             "" if hours else "no Fitbit samples loaded for this participant-day",
                             rows=hours, metadata={"metrics": metrics} | aggregates)
            for pid, day, hours, metrics in timescale.fetch(queries.HOURLY_PER_DAY, refresh.day_params(days))
        ]
        yield from report(context, outcomes, check=False)


def summary_outcomes(timescale: Timescale, days: list[ParticipantDay],
                     rule: refresh.ValidDayRule) -> list[PartitionOutcome]:
    """Each participant-day's summary as its partition shows it: the verdict, its reason and the
    headline numbers (plotted across partitions in the UI)."""
    outcomes = []
    rows = timescale.fetch(queries.SUMMARY_PER_DAY, refresh.day_params(days))
    for pid, day, reason, valid, hr_mean, resting_hr, steps, wear, completeness, fitbit, actigraph, quarantined in rows:
        metadata: dict[str, Any] = {"completeness_reason": reason, "valid_day": bool(valid),
                                    "fitbit_status": fitbit, "actigraph_status": actigraph,
                                    "quarantined_values": quarantined,
                                    "valid_day_rule": rule.text, "valid_day_rule_version": rule.version}
        for name, value in (("hr_mean", hr_mean), ("resting_hr", resting_hr), ("steps", steps),
                            ("wear_minutes", wear), ("completeness", completeness)):
            if value is not None:
                metadata[name] = float(value)
        outcomes.append(PartitionOutcome(ParticipantDay(day, pid).key, "ok", reason or "", rows=1, metadata=metadata))
    written = {o.key for o in outcomes}
    outcomes += [PartitionOutcome(d.key, "skipped", "no summary row: the participant is not in wearables.participants",
                                  rows=0) for d in days if d.key not in written]
    return outcomes


@dg.asset(
    owners=OWNERS,
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    deps=[FITBIT_INTRADAY, ACTIGRAPH_DAILY],
    automation_condition=follow_upstream(),
    backfill_policy=BACKFILL_POLICY,
    kinds={"timescaledb"},
    description="One row per participant-day combining Fitbit and ActiGraph, with wear minutes, the "
    "valid-day verdict (rule and version) and why data is missing: wearables.participant_day_summary.",
)
def participant_day_summary(context: dg.AssetExecutionContext, timescale: TimescaleResource) -> Any:
    with transient_database_errors():
        days = partition_days(context)
        rule = refresh.ValidDayRule.from_env()
        result = refresh.refresh_participant_day_summary(timescale, days, rule)
        context.log.info(f"participant_day_summary: {result.inserted} row(s) written")
        yield from report(context, summary_outcomes(timescale, days, rule), check=False)


def _cohort_table(rows: list[dict[str, Any]]) -> pa.Table:
    schema = pa.schema([
        ("study_id", pa.string()), ("week_start", pa.date32()), ("iso_year", pa.int32()), ("iso_week", pa.int32()),
        ("enrolled_participants", pa.int32()), ("participant_days", pa.int32()), ("valid_days", pa.int32()),
        ("median_steps", pa.float64()), ("mean_resting_hr", pa.float64()), ("adherence_pct", pa.float64()),
    ])
    return pa.Table.from_pylist(
        [{k: (float(v) if k in ("median_steps", "mean_resting_hr", "adherence_pct") and v is not None else v)
          for k, v in row.items()} for row in rows],
        schema=schema,
    )


@dg.asset(
    owners=OWNERS,
    group_name=GROUP,
    partitions_def=weekly_partitions,
    retry_policy=RETRY_POLICY,
    deps=[dg.AssetDep("participant_day_summary",
                      partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date"))],
    automation_condition=follow_upstream(),
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"timescaledb", "parquet"},
    description="Per study and ISO week: enrolled participants, valid days, median steps, mean resting HR, "
    "adherence. wearables.cohort_week, and the lake table cohort_week for Athena.",
)
def cohort_week(
    context: dg.AssetExecutionContext, timescale: TimescaleResource, lake: LakeResource
) -> dg.MaterializeResult:
    with transient_database_errors():
        weeks = sorted(date.fromisoformat(str(k)) for k in context.partition_keys)
        all_rows: list[dict[str, Any]] = []
        for week_start in weeks:
            # Overlapping runs of one week (automation and a backfill) take turns on its lake folder.
            with timescale.participant_day_lock("cohort_week", COHORT_LAKE_PARTICIPANT, week_start):
                rows = refresh.refresh_cohort_week(timescale, week_start)
                lake.write_partition(COHORT_LAKE_PARTICIPANT, week_start, [
                    PartitionTable("cohort_week", _cohort_table(rows), {"week_start": week_start})])
            all_rows.extend(rows)
        metadata: dict[str, Any] = {
            "weeks": len(weeks),
            "rows_written": len(all_rows),
            "studies": len({r["study_id"] for r in all_rows}),
            "lake_table": lake.table_glob("cohort_week"),
        }
        if len(all_rows) == 1:
            only = all_rows[0]
            for name in ("adherence_pct", "median_steps", "mean_resting_hr", "valid_days", "enrolled_participants"):
                if only[name] is not None:
                    metadata[name] = float(only[name])
        if all_rows:
            lines = ["| study | week | enrolled | valid days | median steps | adherence % |", "|---|---|---|---|---|---|"]
            lines += [
                f"| {r['study_id']} | {r['iso_year']}-W{r['iso_week']:02d} | {r['enrolled_participants']} | "
                f"{r['valid_days']}/{r['participant_days']} | "
                f"{'' if r['median_steps'] is None else round(r['median_steps'])} | {r['adherence_pct']} |"
                for r in all_rows[:50]
            ]
            metadata["weeks_table"] = dg.MetadataValue.md("\n".join(lines))
        return dg.MaterializeResult(metadata=metadata)
