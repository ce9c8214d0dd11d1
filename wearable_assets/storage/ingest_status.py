"""The one writer of ``wearables.ingest_status``: one row per participant-day and source.

Both devices' loaders record here what happened to a participant-day (``ok``, ``no_data``,
``api_error``, ``needs_reconsent``, ...), inside the transaction that replaced the day's rows
when there was a load, so the status never claims rows that were rolled back. The semantics
are the same for every source:

- ``rows_loaded=None`` keeps the previous count: a failed fetch leaves the rows loaded earlier
  in place, so the status must not claim zero (a source that wants zero passes ``0``);
- ``last_device_sync=None`` and ``time_zone=None`` keep the previous values (the zone is the one
  whose local day the stored rows cover; the column exists since ``sql/008``);
- ``finished_at`` is the caller's clock when given (the load's timestamp), else the database's.
"""

from __future__ import annotations

from datetime import date, datetime

import psycopg

_UPSERT = """
INSERT INTO wearables.ingest_status AS s
       (participant_id, local_date, source, status, detail, rows_loaded, api_calls, last_device_sync,
        time_zone, finished_at)
VALUES (%(participant_id)s, %(day)s, %(source)s, %(status)s, %(detail)s, COALESCE(%(rows_loaded)s, 0),
        %(api_calls)s, %(last_device_sync)s, %(time_zone)s, COALESCE(%(finished_at)s, now()))
ON CONFLICT (participant_id, local_date, source) DO UPDATE SET
       status = EXCLUDED.status, detail = EXCLUDED.detail,
       rows_loaded = COALESCE(%(rows_loaded)s, s.rows_loaded), api_calls = EXCLUDED.api_calls,
       last_device_sync = COALESCE(EXCLUDED.last_device_sync, s.last_device_sync),
       time_zone = COALESCE(EXCLUDED.time_zone, s.time_zone), finished_at = EXCLUDED.finished_at
"""


def record(conn: psycopg.Connection, participant_id: str, day: date, source: str, status: str, *,
           detail: str = "", rows_loaded: int | None = None, api_calls: int = 0,
           last_device_sync: datetime | None = None, time_zone: str | None = None,
           finished_at: datetime | None = None) -> None:
    """Upsert the participant-day's status row in the caller's transaction (the caller commits)."""
    conn.execute(_UPSERT, {
        "participant_id": participant_id, "day": day, "source": source, "status": status,
        "detail": detail or None, "rows_loaded": rows_loaded, "api_calls": api_calls,
        "last_device_sync": last_device_sync, "time_zone": time_zone, "finished_at": finished_at,
    })
