"""``wearables.quarantined_values``: the values the plausibility rules kept out of the measurements.

The loaders call ``replace_day`` on the connection and inside the transaction that replaces the
participant-day's measurements, so the quarantine always matches what the measurement tables hold
for that day and device: a re-load never duplicates, and a value that a newer rule version lets
through disappears from here when it appears there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from wearable_assets.plausibility import Quarantined
from wearable_assets.storage.timescale import Timescale

TABLE = "wearables.quarantined_values"
COLUMNS = ("participant_id", "local_date", "device", "source", "metric", "ts", "setting_id", "value", "rule",
           "rule_version", "reason", "loaded_at")
DEVICES = ("fitbit", "actigraph")


def rows(participant_id: str, day: date, device: str, source: str, values: Iterable[Quarantined],
         loaded_at: datetime, setting_id: int | None = None) -> list[tuple[Any, ...]]:
    """``values`` as rows in ``COLUMNS`` order."""
    return [(participant_id, day, device, source, q.metric, q.ts, setting_id, q.value, q.rule, q.rule_version,
             q.reason, loaded_at) for q in values]


def replace_day(timescale: Timescale, conn: Any, participant_id: str, day: date, device: str,
                new_rows: Iterable[tuple[Any, ...]]) -> int:
    """Make the participant-day's quarantine for ``device`` exactly ``new_rows`` (on ``conn``,
    in the caller's transaction). Returns how many rows were written."""
    if device not in DEVICES:
        raise ValueError(f"device {device!r} is not one of {DEVICES}")
    conn.execute(f"DELETE FROM {TABLE} WHERE participant_id = %s AND local_date = %s AND device = %s",
                 (participant_id, day, device))
    batch = list(new_rows)
    if not batch:
        return 0
    return timescale.copy_rows(conn, TABLE, COLUMNS, batch)
