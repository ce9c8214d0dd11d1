-- The time zone that defined each participant-day's window ([D 00:00, D+1 00:00) local, as UTC):
-- the roster zone at load time. Stored with the status row so a day loaded before a roster zone
-- change can be found and re-run, and so the window of a stored day can be recomputed in SQL.
-- NULL for rows written before this column existed (and for fetch failures that never loaded).
ALTER TABLE wearables.ingest_status ADD COLUMN IF NOT EXISTS time_zone text;
