-- Core schema: participants, OAuth tokens, ingest status and the Fitbit intraday hypertable.
-- Applied once by wearable_assets.storage.migrations (recorded in wearables.schema_migrations).

CREATE TABLE wearables.participants (
    participant_id          text PRIMARY KEY CHECK (participant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    study_id                text NOT NULL,
    time_zone               text NOT NULL,
    enrolled_from           date NOT NULL,
    enrolled_to             date,
    fitbit_provider         text CHECK (fitbit_provider IN ('google_health', 'fitbit_legacy')),
    fitbit_user_id          text,
    centrepoint_study_id    text,
    centrepoint_subject_id  text,
    in_roster               boolean NOT NULL DEFAULT true,  -- false once removed from the roster file
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- OAuth tokens are stored encrypted (Fernet); the key never reaches the database.
CREATE TABLE wearables.oauth_tokens (
    participant_id    text NOT NULL REFERENCES wearables.participants ON DELETE CASCADE,
    provider          text NOT NULL CHECK (provider IN ('google_health', 'fitbit_legacy')),
    token_ciphertext  bytea,
    expires_at        timestamptz,
    auth_state        text NOT NULL DEFAULT 'active' CHECK (auth_state IN ('active', 'needs_reconsent')),
    reconsent_reason  text,
    refreshed_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, provider)
);

-- One row per participant-day and source: what the last ingest attempt found. Rollups read it
-- to explain missing data (not synced yet / not worn / needs re-consent / API error / true zero).
CREATE TABLE wearables.ingest_status (
    participant_id    text NOT NULL,
    local_date        date NOT NULL,
    source            text NOT NULL,   -- google_health | fitbit_legacy | centrepoint
    status            text NOT NULL CHECK (status IN ('ok', 'no_data', 'needs_reconsent', 'api_error')),
    detail            text,
    rows_loaded       bigint NOT NULL DEFAULT 0,
    api_calls         integer NOT NULL DEFAULT 0,
    last_device_sync  timestamptz,
    finished_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, local_date, source)
);

-- Narrow intraday table: one row per sample, so new metrics or devices need no schema change.
-- Only the unique key is indexed: it is the idempotency key and already ends in ts, and each
-- extra index costs ~25% of load speed (sql/README.md has the measurements).
CREATE TABLE wearables.fitbit_intraday (
    participant_id  text NOT NULL,
    metric          text NOT NULL,
    ts              timestamptz NOT NULL,
    value           double precision NOT NULL,
    utc_offset_min  smallint,          -- local clock offset at ts, as reported by the API
    source          text NOT NULL,     -- google_health | fitbit_legacy
    device          text               -- provenance (dataSource / device), may be null
);
SELECT create_hypertable('wearables.fitbit_intraday', 'ts',
                         chunk_time_interval => interval '1 day',
                         create_default_indexes => false);
CREATE UNIQUE INDEX fitbit_intraday_key ON wearables.fitbit_intraday (participant_id, metric, ts);
