"""What applying a roster would change, and which of those changes are refused without ``--force``.

A roster file is edited by hand, so a valid file can still be a mistake: an emptied
``fitbit_user_id`` cell or a deleted row would otherwise unlink the devices of a participant
who is already ingesting, and the scheduled loads would skip them without an error anywhere.
The plan therefore compares the roster with ``wearables.participants`` and refuses, with one
line per participant, any change that

- empties or changes ``fitbit_provider``, ``fitbit_user_id``, ``centrepoint_study_id`` or
  ``centrepoint_subject_id`` of a participant who already has data (rows in
  ``wearables.ingest_status`` or an OAuth token in ``wearables.oauth_tokens``); adding a device
  to an empty link is allowed;
- removes from the roster a participant who already has data (their data would be kept and
  flagged ``in_roster = false``, but their partition and scheduled loads would go);
- meets a key in the dynamic ``participants`` partitions that is not a valid participant id or
  not in the roster and not a participant being removed from it (a key added by hand in the
  Dagster UI): the roster never added it, so removing it silently would hide the mistake.

The roster sensor never forces: it fails its tick with these lines and applies nothing. The
operator applies an intended change with ``wearable-assets roster sync --force``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import psycopg

from wearable_assets.participant_day import (
    InvalidParticipantId,
    validate_participant_id,
)
from wearable_assets.participants.sync import PartitionChanges, write_participants
from wearable_assets.roster import COLUMNS, Participant, RosterError
from wearable_assets.storage.timescale import Timescale

#: The columns that link a participant to their device accounts.
LINK_COLUMNS = ("fitbit_provider", "fitbit_user_id", "centrepoint_study_id", "centrepoint_subject_id")
FORCE_HINT = "fix the roster, or apply it with `wearable-assets roster sync --force` if the change is intended"
# One roster sync at a time (sensor tick and CLI), so the checks and the write see the same rows.
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('wearables.participants roster sync'))"


class RosterRefused(RosterError):
    """A valid roster whose application would unlink devices or drop partitions; needs ``--force``."""


@dataclass(frozen=True)
class RosterPlan:
    """The changes a roster makes to ``wearables.participants`` and the ``participants`` partitions.

    ``refusals`` are the changes that need ``--force`` (one line each); the other fields list
    every change as if forced, so a forced sync applies exactly what was reported.
    """

    roster: list[Participant]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    partitions: PartitionChanges = field(default_factory=lambda: PartitionChanges(add=[], remove=[]))
    refusals: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed or self.partitions.add or self.partitions.remove)

    def summary(self, partitions: bool = True) -> str:
        """``2 added (P006, P007), 1 changed (P001), 0 removed; partitions +2 -0``.

        ``partitions=False`` leaves the partition counts out, for when the partitions were not read.
        """

        def part(ids: list[str], verb: str) -> str:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            return f"{len(ids)} {verb}" + (f" ({shown})" if ids else "")

        rows = f"{part(self.added, 'added')}, {part(self.changed, 'changed')}, {part(self.removed, 'removed')}"
        if not partitions:
            return rows
        return f"{rows}; partitions +{len(self.partitions.add)} -{len(self.partitions.remove)}"


def _value(value: object) -> str:
    return "empty" if value is None else repr(value)


def _data_described(conn: psycopg.Connection, participant_ids: list[str]) -> dict[str, str]:
    """``{participant_id: "12 ingest records, google_health token"}`` for those who have data.

    Only the candidates are looked up (primary-key range scans), so a tick stays cheap however
    long ``ingest_status`` grows.
    """
    if not participant_ids:
        return {}
    rows = conn.execute(
        "SELECT c.pid,"
        " (SELECT count(*) FROM wearables.ingest_status s WHERE s.participant_id = c.pid),"
        " (SELECT array_agg(t.provider ORDER BY t.provider) FROM wearables.oauth_tokens t"
        "  WHERE t.participant_id = c.pid)"
        " FROM unnest(%s::text[]) AS c(pid)",
        (participant_ids,),
    ).fetchall()
    out: dict[str, str] = {}
    for pid, records, providers in rows:
        parts = [f"{records} ingest record{'s' * (records != 1)}"] if records else []
        parts += [f"{provider} token" for provider in providers or []]
        if parts:
            out[pid] = ", ".join(parts)
    return out


def plan_roster(
    conn: psycopg.Connection, roster: list[Participant], existing_partitions: Sequence[str], today: date,
    source: str = "roster",
) -> RosterPlan:
    """Compare ``roster`` with the database and the partitions; reads only.

    ``source`` names the file in messages; row numbers follow ``roster.parse_rows`` (line 2 is
    the first participant).
    """
    current = {
        row[0]: row
        for row in conn.execute(
            f"SELECT {', '.join(COLUMNS)}, in_roster FROM wearables.participants"
        ).fetchall()
    }
    line = {p.participant_id: number for number, p in enumerate(roster, start=2)}
    in_roster = set(line)
    added: list[str] = []
    changed: list[str] = []
    link_changes: dict[str, list[str]] = {}
    for p in roster:
        old = current.get(p.participant_id)
        new = tuple(getattr(p, c) for c in COLUMNS)
        if old is None or not old[-1]:
            added.append(p.participant_id)
        elif tuple(old[:-1]) != new:
            changed.append(p.participant_id)
        if old is None:
            continue
        old_links = dict(zip(COLUMNS, old[:-1], strict=True))
        diffs = [
            f"{c} would change from {_value(old_links[c])} to {_value(getattr(p, c))}"
            for c in LINK_COLUMNS
            if old_links[c] is not None and old_links[c] != getattr(p, c)
        ]
        if diffs:
            link_changes[p.participant_id] = diffs
    removed = sorted(pid for pid, row in current.items() if row[-1] and pid not in in_roster)

    data = _data_described(conn, sorted({*link_changes, *removed}))
    refusals = [
        f"{source} line {line[pid]}: participant {pid} {'; '.join(diffs)}, but {pid} already has data "
        f"({data[pid]}): this unlinks their device; {FORCE_HINT}"
        for pid, diffs in link_changes.items()
        if pid in data
    ]
    refusals += [
        f"{source}: participant {pid} is no longer listed but already has data ({data[pid]}): their partition "
        f"and scheduled loads would stop (the data is kept, flagged in_roster = false); put the row back, "
        f"or apply with `wearable-assets roster sync --force` if they really left the study"
        for pid in removed
        if pid in data
    ]

    wanted = [p.participant_id for p in roster if p.enrolled_from <= today]
    existing = set(existing_partitions)
    for key in sorted(existing - in_roster - set(removed)):
        try:
            validate_participant_id(key)
        except InvalidParticipantId as exc:
            reason = f"is not a valid participant id ({exc})"
        else:
            reason = f"is not in {source}"
        refusals.append(
            f"partition key {key!r} of the Dagster 'participants' partitions {reason}: it was added by hand, "
            f"not by the roster; add the participant to the roster, or remove the key with "
            f"`wearable-assets roster sync --force`"
        )
    partitions = PartitionChanges(
        add=[pid for pid in wanted if pid not in existing],
        # Keys of roster participants whose enrolment has not started yet are left alone.
        remove=sorted(existing - in_roster),
    )
    return RosterPlan(roster, added, changed, removed, partitions, refusals)


def sync_roster(
    timescale: Timescale, roster: list[Participant], existing_partitions: Sequence[str], today: date, *,
    force: bool = False, source: str = "roster",
) -> RosterPlan:
    """Plan and write ``roster`` to ``wearables.participants`` in one transaction.

    Raises ``RosterRefused`` (nothing written) when the plan has refusals and ``force`` is
    false. The partition changes are returned, not applied: the sensor turns them into
    requests, the CLI applies them to the instance.
    """
    with timescale.connect() as conn:
        conn.execute(_LOCK_SQL)
        plan = plan_roster(conn, roster, existing_partitions, today, source)
        if plan.refusals and not force:
            conn.rollback()
            raise RosterRefused(plan.refusals)
        if not (plan.added or plan.changed or plan.removed):
            conn.rollback()
            return plan
        write_participants(timescale, conn, roster)
        conn.commit()
    return plan
