"""A participant-day (``2026-11-01|P001``) and participant-id validation, without Dagster.

The partitions themselves are Dagster objects (``partitions``); the key they produce and the
ids they accept are plain values, kept here so that code which only loads or reads a
participant-day (the loaders, their benchmark) does not import Dagster. Ids are validated here
because Dagster itself accepts ids such as ``a|b`` and only breaks later, when it parses keys
or ranges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# The whole id must match: use fullmatch (\A...\Z also keeps .match safe). A "$" anchor would
# accept a trailing newline ("P1\n"), which then breaks partition keys and lookups.
PARTICIPANT_ID_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")


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
    def from_key(cls, key: str) -> ParticipantDay:
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
