"""Reading participants back from ``wearables.participants``: the one place that SELECTs them.

A row of the table is a ``roster.Participant`` (the table mirrors the roster's columns, see
``participants.sync``), so every reader - the Fitbit and ActiGraph assets, the daily schedule,
the enrolment command and the read API - gets the same dataclass with the same enrolment rule
(``Participant.enrolled_on``) instead of its own partial copy. The roster sync's own comparison
(``participants.plan``) also reads ``in_roster`` and stays there, next to the writes it plans.

Every function takes either a ``Timescale`` or an open psycopg connection (the read API's
read-only pool, or a caller's transaction), so the same SELECT serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from wearable_assets.roster import COLUMNS, Participant
from wearable_assets.storage.timescale import Timescale

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM wearables.participants"
#: In the current roster and linked to at least one device: the participants the schedule pulls.
_SCHEDULED = "in_roster AND (fitbit_provider IS NOT NULL OR centrepoint_subject_id IS NOT NULL)"


def _fetch(source: Timescale | psycopg.Connection, query: str, params: Any = None) -> Iterable[tuple[Any, ...]]:
    if isinstance(source, Timescale):
        return source.fetch(query, params)
    return source.execute(query, params).fetchall()


def load(source: Timescale | psycopg.Connection, participant_ids: Sequence[str]) -> dict[str, Participant]:
    """The named participants that the table knows, by id (unknown ids are simply absent)."""
    rows = _fetch(source, f"{_SELECT} WHERE participant_id = ANY(%s)", (list(participant_ids),))
    return {row[0]: Participant(*row) for row in rows}


def find(source: Timescale | psycopg.Connection, participant_id: str) -> Participant | None:
    """One participant, or ``None`` when the roster sync has not written them."""
    return load(source, [participant_id]).get(participant_id)


def scheduled(source: Timescale | psycopg.Connection) -> list[Participant]:
    """Participants in the current roster with a device, ordered by id."""
    return [Participant(*row) for row in _fetch(source, f"{_SELECT} WHERE {_SCHEDULED} ORDER BY participant_id")]
