"""Mirror the roster file into ``wearables.participants`` and the ``participants`` partitions.

Participants are added to the partitions once their enrolment starts and stay there after it
ends (their history remains materialisable); a participant removed from the roster file is
removed from the partitions and flagged ``in_roster = false`` in the database, but their data
is kept, because clinical data is deleted by a deliberate procedure, not by a file edit.

These are the plain writes. The roster sensor and ``wearable-assets roster sync`` go through
``participants.plan.sync_roster``, which first refuses changes that would unlink the devices
of participants who already have data; ``upsert_participants`` itself checks nothing (test
fixtures, the demo and the benchmarks use it to set up a cohort).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg
import psycopg

from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
from wearable_assets.roster import COLUMNS, Participant
from wearable_assets.storage.timescale import Timescale

# The roster's columns are the table's columns: wearables.participants mirrors the CSV.
_COLUMNS = COLUMNS


@dataclass(frozen=True)
class PartitionChanges:
    add: list[str]
    remove: list[str]


def partition_changes(roster: list[Participant], existing: Sequence[str], today: date) -> PartitionChanges:
    """Which participant partitions to add and remove so they match the roster as of ``today``."""
    wanted = [p.participant_id for p in roster if p.enrolled_from <= today]
    current = set(existing)
    return PartitionChanges(
        add=[pid for pid in wanted if pid not in current],
        remove=sorted(current - set(wanted)),
    )


def upsert_participants(timescale: Timescale, roster: list[Participant]) -> int:
    """Write the roster to ``wearables.participants``; returns the number of rows changed."""
    with timescale.connect() as conn:
        changed = write_participants(timescale, conn, roster)
        conn.commit()
    return changed


def write_participants(timescale: Timescale, conn: psycopg.Connection, roster: list[Participant]) -> int:
    """Upsert ``roster`` and flag everyone else ``in_roster = false`` on ``conn`` (not committed)."""
    rows = [tuple(getattr(p, c) for c in _COLUMNS) + (True,) for p in roster]
    changed = timescale.upsert_rows(
        "wearables.participants",
        key=["participant_id"],
        columns=[*_COLUMNS, "in_roster"],
        rows=rows,
        conn=conn,
    )
    ids = [p.participant_id for p in roster]
    changed += conn.execute(
        "UPDATE wearables.participants SET in_roster = false, updated_at = now() "
        "WHERE in_roster AND NOT (participant_id = ANY(%s))",
        (ids,),
    ).rowcount
    return changed


def apply_to_instance(instance: dg.DagsterInstance, changes: PartitionChanges) -> None:
    """Apply partition changes directly (CLI / CI); the sensor returns requests instead."""
    if changes.add:
        instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, changes.add)
    for pid in changes.remove:
        instance.delete_dynamic_partition(PARTICIPANTS_PARTITION_NAME, pid)
