"""The one partitioning scheme every per-participant asset shares: ``date`` x ``participant``.

Keys read ``2026-11-01|P001`` because Dagster orders multi-partition dimensions alphabetically
by name (``date`` < ``participant``). Participant ids are validated here because Dagster
itself accepts ids such as ``a|b`` and only breaks later, when it parses keys or ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import dagster as dg

from wearable_assets import settings

# The whole id must match: use fullmatch (\A...\Z also keeps .match safe). A "$" anchor would
# accept a trailing newline ("P1\n"), which then breaks partition keys and lookups.
PARTICIPANT_ID_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
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


class InvalidParticipantId(ValueError):
    """Raised for an id that would break Dagster's partition-key parsing."""


def validate_participant_id(participant_id: str) -> str:
    if not isinstance(participant_id, str) or not PARTICIPANT_ID_PATTERN.fullmatch(participant_id):
        raise InvalidParticipantId(
            f"participant id {participant_id!r} is not allowed: use 1-64 characters from "
            "A-Z a-z 0-9 _ - (Dagster partition keys reserve '|', ',' and '...')"
        )
    return participant_id


@dataclass(frozen=True, order=True)
class ParticipantDay:
    """One partition: a participant's civil day in their own time zone."""

    day: date
    participant_id: str

    @property
    def key(self) -> str:
        return f"{self.day.isoformat()}|{self.participant_id}"

    @classmethod
    def from_key(cls, key: str) -> "ParticipantDay":
        """Parse ``2026-11-01|P001``; works on plain strings and ``MultiPartitionKey``.

        Parsing the string (rather than ``.keys_by_dimension``) is deliberate: direct asset
        invocation in tests passes a plain ``str``.
        """
        text = str(key)
        day_text, sep, participant_id = text.partition("|")
        if not sep:
            raise ValueError(f"partition key {text!r} is not of the form 'YYYY-MM-DD|participant'")
        try:
            day = date.fromisoformat(day_text)
        except ValueError as exc:
            raise ValueError(f"partition key {text!r}: {day_text!r} is not an ISO date") from exc
        return cls(day=day, participant_id=validate_participant_id(participant_id))

    def to_multi_key(self) -> dg.MultiPartitionKey:
        return dg.MultiPartitionKey({"date": self.day.isoformat(), "participant": self.participant_id})


def partition_days(context: dg.AssetExecutionContext) -> list[ParticipantDay]:
    """All participant-days of a run, for single-key and ranged (backfill) runs alike."""
    return sorted(ParticipantDay.from_key(k) for k in context.partition_keys)
