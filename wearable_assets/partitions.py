"""The one partitioning scheme every per-participant asset shares: ``date`` x ``participant``.

Keys read ``2026-11-01|P001`` because Dagster orders multi-partition dimensions alphabetically
by name (``date`` < ``participant``). The key itself (``ParticipantDay``) and participant-id
validation are plain Python, in ``participant_day``.
"""

from __future__ import annotations

import dagster as dg

from wearable_assets import settings
from wearable_assets.participant_day import ParticipantDay

PARTICIPANTS_PARTITION_NAME = "participants"
#: Participant-days per run, for the schedule's ranged runs and every participant-day asset's
#: backfill policy alike. One value for all the assets: with differing policies Dagster's backfill
#: dialog warns and splits a backfill by the smallest (140 participant-days went into 60 runs with
#: 8 / 31 / 500), and every run pays a process start, the code location's import and Dagster's
#: per-run bookkeeping (docs/orchestration.md, "Throughput": ranged runs of 50 cost a fraction of
#: the CPU per participant-day of one run each). API limits do not bound it: the resources' rate
#: limiters pace the requests whatever the run's size.
PARTICIPANT_DAYS_PER_RUN = 50
participant_day_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=PARTICIPANT_DAYS_PER_RUN)

daily_partitions = dg.DailyPartitionsDefinition(start_date=settings.partition_start(), end_offset=0)
participant_partitions = dg.DynamicPartitionsDefinition(name=PARTICIPANTS_PARTITION_NAME)
participant_day_partitions = dg.MultiPartitionsDefinition(
    {"date": daily_partitions, "participant": participant_partitions}
)
# ISO weeks (Monday start). end_offset=1 makes the week in progress a partition too, so the
# cohort view is current (and is refreshed as the week's days arrive).
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=settings.partition_start(), day_offset=1, end_offset=1
)


def to_multi_key(pday: ParticipantDay) -> dg.MultiPartitionKey:
    """The Dagster key of a participant-day (for ``instance`` and run APIs that want one)."""
    return dg.MultiPartitionKey({"date": pday.day.isoformat(), "participant": pday.participant_id})


def partition_days(context: dg.AssetExecutionContext) -> list[ParticipantDay]:
    """All participant-days of a run, for single-key and ranged (backfill) runs alike."""
    return sorted(ParticipantDay.from_key(k) for k in context.partition_keys)
