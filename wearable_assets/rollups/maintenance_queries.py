"""The SQL of the TimescaleDB maintenance and of the job-health check (``maintenance.py``).

Kept in one module so what the maintenance does to the server can be read in one place. Only
the job views (``timescaledb_information.jobs``, ``job_stats``, ``job_errors``) and the chunk
functions (``show_chunks``, ``compress_chunk``, ``chunks_detailed_size``) are public API; the
partial-compression flag of a chunk is not exposed by any view in 2.19, so it is read from the
catalog (``_timescaledb_catalog.chunk.status``: 1 compressed, 2 unordered, 8 partially
compressed — rows written into a compressed chunk after it was compressed).
"""

from __future__ import annotations

HYPERTABLE_SCHEMA, HYPERTABLE_NAME = "wearables", "fitbit_intraday"
HYPERTABLE = f"{HYPERTABLE_SCHEMA}.{HYPERTABLE_NAME}"
#: The ingest_status sources whose loads write wearables.fitbit_intraday.
FITBIT_SOURCES = ["google_health", "fitbit_legacy"]
#: Serialises maintenance runs (any number: only this project's maintenances take it).
ADVISORY_LOCK_ID = 7_401_202_612

# --- what changed since the last maintenance ---------------------------------------------------
# Each participant-day's UTC span, widened to whole UTC days: the 1-day aggregate refreshes only
# buckets that lie entirely inside the window it is given. Without a known zone (a participant
# removed from the roster before its zone was stored) the span covers every zone (UTC-12..+14).
PENDING = """
SELECT i.participant_id, i.local_date, i.source, i.finished_at,
       CASE WHEN z.tz IS NULL THEN i.local_date::timestamp AT TIME ZONE 'UTC' - interval '1 day'
            ELSE date_trunc('day', i.local_date::timestamp AT TIME ZONE z.tz, 'UTC') END AS lo,
       CASE WHEN z.tz IS NULL THEN i.local_date::timestamp AT TIME ZONE 'UTC' + interval '2 days'
            ELSE date_trunc('day', (i.local_date + 1)::timestamp AT TIME ZONE z.tz - interval '1 microsecond', 'UTC')
                 + interval '1 day' END AS hi
  FROM wearables.ingest_status i
  LEFT JOIN wearables.participants p ON p.participant_id = i.participant_id
  LEFT JOIN wearables.maintenance_handled m
         ON (m.participant_id, m.local_date, m.source) = (i.participant_id, i.local_date, i.source)
  CROSS JOIN LATERAL (SELECT coalesce(i.time_zone, p.time_zone) AS tz) z
 WHERE i.source = ANY(%(sources)s) AND m.finished_at IS DISTINCT FROM i.finished_at
 ORDER BY lo, i.participant_id"""

MARK_HANDLED = """
INSERT INTO wearables.maintenance_handled (participant_id, local_date, source, finished_at)
SELECT * FROM unnest(%(participant_ids)s::text[], %(dates)s::date[], %(sources)s::text[], %(finished)s::timestamptz[])
ON CONFLICT (participant_id, local_date, source) DO UPDATE
   SET finished_at = EXCLUDED.finished_at, handled_at = now()"""

EXISTING_AGGREGATES = """
SELECT format('%%I.%%I', view_schema, view_name)
  FROM timescaledb_information.continuous_aggregates
 WHERE format('%%I.%%I', view_schema, view_name) = ANY(%(names)s)"""

REFRESH_AGGREGATE = "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)"

# --- compression -------------------------------------------------------------------------------
COMPRESSION_ENABLED = """
SELECT compression_enabled FROM timescaledb_information.hypertables
 WHERE hypertable_schema = %(schema)s AND hypertable_name = %(name)s"""

#: The compression policy's window: the maintenance compresses exactly what the policy would.
COMPRESS_AFTER = """
SELECT (config ->> 'compress_after')::interval FROM timescaledb_information.jobs
 WHERE proc_name = 'policy_compression' AND hypertable_schema = %(schema)s AND hypertable_name = %(name)s
 ORDER BY job_id LIMIT 1"""

#: Chunks past the window that are not compressed, and compressed chunks that took rows since
#: (partial/unordered), oldest first.
CHUNKS_TO_COMPRESS = """
SELECT format('%%I.%%I', c.schema_name, c.table_name) AS chunk, c.status,
       CASE WHEN c.status & 1 = 0 THEN 'compress' ELSE 'recompress' END AS action
  FROM _timescaledb_catalog.chunk c
  JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
  JOIN timescaledb_information.chunks i ON (i.chunk_schema, i.chunk_name) = (c.schema_name, c.table_name)
 WHERE h.schema_name = %(schema)s AND h.table_name = %(name)s AND NOT c.dropped
   AND ((c.status & 1 = 0 AND i.range_end <= now() - %(compress_after)s::interval)
        OR (c.status & 1 = 1 AND c.status & (2 | 8) <> 0))
 ORDER BY i.range_start"""

CHUNK_BYTES = """
SELECT total_bytes FROM chunks_detailed_size(%(hypertable)s::regclass)
 WHERE format('%%I.%%I', chunk_schema, chunk_name) = %(chunk)s"""

CHUNK_STATUS = """
SELECT c.status FROM _timescaledb_catalog.chunk c WHERE format('%%I.%%I', c.schema_name, c.table_name) = %(chunk)s"""

# compress_chunk recompresses a partially compressed chunk (2.19: status 9 -> 1).
COMPRESS_CHUNK = "SELECT compress_chunk(%(chunk)s::regclass, if_not_compressed => true)"

#: The columnstore relation holding a compressed chunk's data.
COMPRESSED_RELATION = """
SELECT format('%%I.%%I', cc.schema_name, cc.table_name)
  FROM _timescaledb_catalog.chunk c JOIN _timescaledb_catalog.chunk cc ON cc.id = c.compressed_chunk_id
 WHERE format('%%I.%%I', c.schema_name, c.table_name) = %(chunk)s"""

# After a recompression the chunk's row part is empty but still holds the reloaded rows as dead
# tuples and its unique index keeps their pages (measured: a reloaded participant-day left a
# 1-day chunk at 11 MB after recompression, 1.2 MB after these), and the rewritten segments
# leave dead tuples in the columnstore relation. Names come from the catalog, already quoted.
VACUUM = "VACUUM {}"
REINDEX = "REINDEX TABLE {}"

# --- job health --------------------------------------------------------------------------------
JOBS = """
SELECT j.job_id, j.application_name, j.proc_schema || '.' || j.proc_name AS proc,
       CASE WHEN ca.view_name IS NOT NULL THEN ca.view_schema || '.' || ca.view_name
            WHEN j.hypertable_name IS NOT NULL THEN j.hypertable_schema || '.' || j.hypertable_name END,
       j.scheduled, j.schedule_interval, s.last_run_status, s.job_status,
       -- a job that never ran or never succeeded has -infinity there, which Python cannot hold
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END,
       s.total_runs, s.total_failures,
       (j.scheduled AND s.job_status IS DISTINCT FROM 'Running'
        AND s.next_start < now() - greatest(j.schedule_interval, %(overdue_grace)s::interval)) AS overdue
  FROM timescaledb_information.jobs j
  LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
  LEFT JOIN timescaledb_information.continuous_aggregates ca  -- name a refresh policy by its view
         ON (ca.materialization_hypertable_schema, ca.materialization_hypertable_name)
          = (j.hypertable_schema, j.hypertable_name)
 ORDER BY j.job_id"""

HAS_JOB_ERRORS = "SELECT to_regclass('timescaledb_information.job_errors') IS NOT NULL"

#: The latest error of a job and when its current run of failures began (the first error after
#: its last success). The history is pruned by TimescaleDB's own retention job, so "since" can
#: be later than the true start of a long run of failures.
JOB_ERRORS = """
SELECT e.job_id,
       (array_agg(e.err_message ORDER BY e.start_time DESC))[1] AS last_error,
       max(e.finish_time) AS last_error_at,
       min(e.start_time) FILTER (WHERE e.start_time > coalesce(s.last_successful_finish, '-infinity')) AS failing_since,
       count(*) AS errors_in_history
  FROM timescaledb_information.job_errors e
  LEFT JOIN timescaledb_information.job_stats s ON s.job_id = e.job_id
 WHERE e.job_id = ANY(%(job_ids)s)
 GROUP BY e.job_id"""
