-- What the timescale_maintenance asset has already handled (wearable_assets/rollups/maintenance.py).
--
-- Every Fitbit load writes its participant-day's wearables.ingest_status row in the same
-- transaction as the samples, with finished_at = the load's time. A row here holds the
-- finished_at the maintenance last acted on; an ingest_status row whose finished_at differs (or
-- that has no row here) is a participant-day changed since, whose time range the continuous
-- aggregates must be refreshed over. Comparing versions instead of keeping a "since" timestamp
-- cannot miss a load that committed while the maintenance was running: its row simply still
-- differs next time. The loads themselves are not changed.
CREATE TABLE wearables.maintenance_handled (
    participant_id  text NOT NULL,
    local_date      date NOT NULL,
    source          text NOT NULL,
    finished_at     timestamptz NOT NULL,  -- the ingest_status.finished_at that was handled
    handled_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, local_date, source)
);
