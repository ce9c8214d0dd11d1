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
