"""TimescaleDB maintenance that does not depend on TimescaleDB's background workers, and the
health of those workers' jobs.

Why: on a Timescale-licensed TimescaleDB 2.19.3 / PostgreSQL 15.20 every background job was
measured failing (``cannot drop portal "" while it is being set up``: the continuous-aggregate
refresh policies, the compression policy and TimescaleDB's own history-retention job), while the
same jobs succeed when run in a session (``CALL run_job``). So nothing was ever compressed by
policy, reloads left compressed chunks partially compressed, and the aggregates depended on the
pipeline's own refresh. The maintenance does the policies' work from the pipeline, after the
day's loads, in ordinary sessions:

1. refreshes the continuous aggregates over exactly the time ranges of the participant-days
   loaded since the last maintenance (``wearables.ingest_status`` rows whose ``finished_at``
   differs from the one recorded in ``wearables.maintenance_handled``);
2. compresses the ``fitbit_intraday`` chunks past the compression policy's window and
   recompresses compressed chunks that took rows since (a re-pull or backfill of an old day),
   then vacuums and reindexes those so the reload's dead rows give their space back;
3. records what it handled, last, so a failure repeats the work rather than losing it.

Everything is idempotent: a second run finds nothing pending and no chunk to touch. On the
Apache edition there is nothing to maintain (no aggregates, no compression) and it says so. The
SQL is in ``maintenance_queries.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from wearable_assets.rollups import maintenance_queries as q
from wearable_assets.rollups.refresh import CONTINUOUS_AGGREGATES
from wearable_assets.storage import migrations
from wearable_assets.storage.timescale import Timescale

#: Used when the compression policy is absent (dropped by hand): the window of sql/tsl/001.
DEFAULT_COMPRESS_AFTER = timedelta(days=30)
#: A scheduled job whose next start is this much (or its schedule interval, if longer) in the
#: past is overdue: the scheduler is not running it.
OVERDUE_GRACE = timedelta(hours=1)


def apache_reason(license_: str | None) -> str:
    return (f"timescaledb.license is '{license_}': continuous aggregates and compression need 'timescale', "
            "so there is nothing to maintain (wearables.intraday_hourly is the hourly rollup)")


# --- changed ranges ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pending:
    participant_id: str
    local_date: date
    source: str
    finished_at: datetime
    lo: datetime
    hi: datetime


def merge_ranges(spans: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching ``[lo, hi)`` spans merged, in order: one refresh per merged range
    (participants of one date share most of their span)."""
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def pending_changes(conn: psycopg.Connection) -> list[Pending]:
    return [Pending(*row) for row in conn.execute(q.PENDING, {"sources": q.FITBIT_SOURCES}).fetchall()]


def mark_handled(conn: psycopg.Connection, handled: Sequence[Pending]) -> None:
    if handled:
        conn.execute(q.MARK_HANDLED, {
            "participant_ids": [p.participant_id for p in handled], "dates": [p.local_date for p in handled],
            "sources": [p.source for p in handled], "finished": [p.finished_at for p in handled],
        })


# --- the run -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkChange:
    chunk: str
    action: str  # compress | recompress
    bytes_before: int
    bytes_after: int


@dataclass
class MaintenanceResult:
    license: str | None
    skipped_reason: str | None = None
    participant_days: int = 0
    ranges: list[tuple[datetime, datetime]] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)
    compress_after: timedelta | None = None
    compression_note: str | None = None
    chunks: list[ChunkChange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes_before(self) -> int:
        return sum(c.bytes_before for c in self.chunks)

    @property
    def bytes_after(self) -> int:
        return sum(c.bytes_after for c in self.chunks)

    def metadata(self) -> dict[str, Any]:
        if self.skipped_reason:
            return {"status": "skipped", "skipped_reason": self.skipped_reason, "license": self.license or "none"}
        out: dict[str, Any] = {
            "status": "ok",
            "license": self.license,
            "participant_days_changed": self.participant_days,
            "ranges_refreshed": len(self.ranges) * len(self.aggregates),
            "time_ranges": "; ".join(f"{lo.isoformat()} .. {hi.isoformat()}" for lo, hi in self.ranges[:50]) or "none",
            "continuous_aggregates": ", ".join(self.aggregates) or "none",
            "chunks_compressed": sum(c.action == "compress" for c in self.chunks),
            "chunks_recompressed": sum(c.action == "recompress" for c in self.chunks),
            "chunks_touched": len(self.chunks),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "seconds": round(self.seconds, 3),
        }
        if self.compress_after is not None:
            out["compress_after_days"] = self.compress_after.total_seconds() / 86400
        if self.compression_note:
            out["compression"] = self.compression_note
        if self.chunks:
            out["chunks"] = "\n".join(f"- {c.chunk}: {c.action} {c.bytes_before} -> {c.bytes_after} bytes"
                                      for c in self.chunks[:100])
        return out


def _refresh(conn: psycopg.Connection, result: MaintenanceResult, pending: Sequence[Pending]) -> None:
    if not pending:
        return
    existing = {r[0] for r in conn.execute(q.EXISTING_AGGREGATES, {"names": list(CONTINUOUS_AGGREGATES)}).fetchall()}
    result.aggregates = [name for name in CONTINUOUS_AGGREGATES if name in existing]  # 1 min feeds 1 h feeds 1 day
    result.ranges = merge_ranges([(p.lo, p.hi) for p in pending])
    for name in result.aggregates:
        for lo, hi in result.ranges:
            conn.execute(q.REFRESH_AGGREGATE, (name, lo, hi))


def _chunk_bytes(conn: psycopg.Connection, chunk: str) -> int:
    row = conn.execute(q.CHUNK_BYTES, {"hypertable": q.HYPERTABLE, "chunk": chunk}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _reclaim(conn: psycopg.Connection, chunk: str) -> None:
    """Give back the space a reload into a compressed chunk left behind (maintenance_queries.VACUUM)."""
    row = conn.execute(q.COMPRESSED_RELATION, {"chunk": chunk}).fetchone()
    for relation in [chunk] + ([row[0]] if row and row[0] else []):
        conn.execute(sql.SQL(q.VACUUM).format(sql.SQL(relation)))
    conn.execute(sql.SQL(q.REINDEX).format(sql.SQL(chunk)))


def _compress(conn: psycopg.Connection, result: MaintenanceResult) -> None:
    where = {"schema": q.HYPERTABLE_SCHEMA, "name": q.HYPERTABLE_NAME}
    enabled = conn.execute(q.COMPRESSION_ENABLED, where).fetchone()
    if not enabled or not enabled[0]:
        result.compression_note = f"compression is not enabled on {q.HYPERTABLE}"
        return
    row = conn.execute(q.COMPRESS_AFTER, where).fetchone()
    result.compress_after = row[0] if row and row[0] is not None else DEFAULT_COMPRESS_AFTER
    if not row:
        result.compression_note = (f"no compression policy on {q.HYPERTABLE}: "
                                   f"window {DEFAULT_COMPRESS_AFTER.days} days (sql/tsl/001)")
    for chunk, _status, action in conn.execute(q.CHUNKS_TO_COMPRESS,
                                               where | {"compress_after": result.compress_after}).fetchall():
        before = _chunk_bytes(conn, chunk)
        conn.execute(q.COMPRESS_CHUNK, {"chunk": chunk})  # autocommit: one chunk per transaction
        if action == "recompress":
            _reclaim(conn, chunk)
        result.chunks.append(ChunkChange(chunk, action, before, _chunk_bytes(conn, chunk)))


def run_maintenance(timescale: Timescale) -> MaintenanceResult:
    """Refresh what changed, compress what is due, record it (module docstring)."""
    started = time.monotonic()
    # autocommit: CALL refresh_continuous_aggregate refuses to run inside a transaction block.
    with timescale.connect(autocommit=True) as conn:
        license_ = migrations.timescale_license(conn)
        result = MaintenanceResult(license=license_)
        if license_ != "timescale":
            result.skipped_reason = apache_reason(license_)
            return result
        conn.execute("SELECT pg_advisory_lock(%s)", (q.ADVISORY_LOCK_ID,))  # one maintenance at a time
        try:
            pending = pending_changes(conn)
            result.participant_days = len({(p.participant_id, p.local_date) for p in pending})
            _refresh(conn, result, pending)
            _compress(conn, result)
            mark_handled(conn, pending)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (q.ADVISORY_LOCK_ID,))
    result.seconds = time.monotonic() - started
    return result


# --- job health ----------------------------------------------------------------------------------
#: TimescaleDB's own jobs have ids below 1000; policies and add_job jobs start at 1000.
FIRST_USER_JOB_ID = 1000


@dataclass(frozen=True)
class JobProblem:
    job_id: int
    name: str
    proc: str
    relation: str | None
    problem: str  # failed | overdue
    last_error: str | None
    since: datetime | None
    last_success: datetime | None
    failures: int

    def __str__(self) -> str:
        on = f" on {self.relation}" if self.relation else ""
        since = f" since {self.since:%Y-%m-%d %H:%M:%S}Z" if self.since else ""
        success = f"{self.last_success:%Y-%m-%d %H:%M}Z" if self.last_success else "never"
        error = f"; last error: {self.last_error}" if self.last_error else ""
        return (f"job {self.job_id} ({self.name}, {self.proc}{on}) {self.problem}{since}, "
                f"{self.failures} failure(s), last success {success}{error}")


@dataclass
class JobHealth:
    license: str | None
    jobs_checked: int
    problems: list[JobProblem]
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems


def job_health(timescale: Timescale, overdue_grace: timedelta = OVERDUE_GRACE) -> JobHealth:
    """Failed or overdue TimescaleDB jobs, each with its latest error and since when it fails.

    On the Apache edition no policy or user job can exist (``add_job`` and every policy need the
    Timescale licence); TimescaleDB's own history-retention job exists there anyway and fails
    on every run under that licence by design, so it is reported in the note, not judged.
    """
    with timescale.connect() as conn:
        license_ = migrations.timescale_license(conn)
        rows = conn.execute(q.JOBS, {"overdue_grace": overdue_grace}).fetchall()
        errors: dict[int, tuple[Any, ...]] = {}
        if rows and conn.execute(q.HAS_JOB_ERRORS).fetchone() == (True,):
            errors = {r[0]: r for r in conn.execute(q.JOB_ERRORS, {"job_ids": [r[0] for r in rows]}).fetchall()}
    note = ""
    if license_ != "timescale":
        internal = [r for r in rows if r[0] < FIRST_USER_JOB_ID]
        rows = [r for r in rows if r[0] >= FIRST_USER_JOB_ID]
        own = ", ".join(f"{r[0]} ({r[1]}: last run {r[6] or 'never'})" for r in internal) or "none"
        note = (f"timescaledb.license is '{license_}': no policy or user jobs can exist under it "
                f"({len(rows)} found); TimescaleDB's own job(s) {own} are not judged (its history-retention "
                "job fails under this licence by design)")
    problems = []
    for (job_id, name, proc, relation, _scheduled, _interval, last_status, _job_status, last_started, last_success,
         _next_start, _runs, failures, overdue) in rows:
        failed = last_status == "Failed"
        if not failed and not overdue:
            continue
        error = errors.get(job_id)
        since = (error[3] if error and error[3] else last_started) if failed else _next_start
        problems.append(JobProblem(job_id, name, proc, relation, "failed" if failed else "overdue",
                                   error[1] if error and failed else None, since, last_success, int(failures or 0)))
    return JobHealth(license_, len(rows), problems, note)
