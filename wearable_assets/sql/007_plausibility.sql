-- Plausibility quarantine and honest per-device completeness.
--
-- Values outside the plausibility rules (wearable_assets/plausibility.py, docs/rollups.md) are
-- not written into wearables.fitbit_intraday / wearables.actigraph_daily_statistics but here,
-- with the rule, its version and the reason. The loaders replace a participant-day's rows of a
-- device in the same transaction as its measurements, so re-loads never duplicate and a load
-- under a newer rule version replaces the older verdicts. Raw payloads in the lake stay as
-- received.
CREATE TABLE wearables.quarantined_values (
    participant_id  text NOT NULL,
    local_date      date NOT NULL,                 -- the participant-day whose load screened the value
    device          text NOT NULL CHECK (device IN ('fitbit', 'actigraph')),
    source          text NOT NULL,                 -- google_health | fitbit_legacy | centrepoint
    metric          text NOT NULL,                 -- Fitbit metric or ActiGraph column name
    ts              timestamptz,                   -- sample time (Fitbit); NULL for ActiGraph daily fields
    setting_id      bigint,                        -- ActiGraph daily-statistics setting; NULL for Fitbit
    value           double precision NOT NULL,     -- exactly as parsed (NaN and infinities included)
    rule            text NOT NULL,                 -- e.g. '0 <= steps <= 300 count'
    rule_version    text NOT NULL,                 -- plausibility.RULE_VERSION at load time
    reason          text NOT NULL,                 -- e.g. '-500 count is below the minimum of 0 count'
    loaded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantined_values_day ON wearables.quarantined_values (participant_id, local_date, device);

-- The summary names each device's state and counts quarantined values.
-- fitbit_status / actigraph_status now hold the device's state for the day (they held the raw
-- ingest status): not_rostered | needs_reconsent | api_error | implausible | not_ingested |
-- not_synced_yet | no_data | ok. completeness_reason is 'complete' only when no rostered
-- device failed: a failing device (needs re-consent, API error, implausible values) names
-- itself, e.g. 'fitbit_needs_reconsent'. The bare 'needs_reconsent' / 'api_error' stay
-- allowed for rows computed before this migration.
ALTER TABLE wearables.participant_day_summary
    ADD COLUMN quarantined_values integer NOT NULL DEFAULT 0,
    DROP CONSTRAINT participant_day_summary_completeness_reason_check,
    ADD CONSTRAINT participant_day_summary_completeness_reason_check CHECK (completeness_reason IN (
        'complete', 'true_zero', 'not_synced_yet', 'not_worn', 'needs_reconsent', 'api_error', 'not_ingested',
        'not_enrolled', 'no_device',
        'fitbit_needs_reconsent', 'fitbit_api_error', 'fitbit_implausible',
        'actigraph_needs_reconsent', 'actigraph_api_error', 'actigraph_implausible'));

COMMENT ON COLUMN wearables.participant_day_summary.fitbit_status IS
    'Fitbit state for the day: not_rostered | needs_reconsent | api_error | implausible | not_ingested | '
    'not_synced_yet | no_data | ok';
COMMENT ON COLUMN wearables.participant_day_summary.actigraph_status IS
    'ActiGraph state for the day: not_rostered | needs_reconsent | api_error | implausible | not_ingested | '
    'not_synced_yet | no_data | ok';
COMMENT ON COLUMN wearables.participant_day_summary.quarantined_values IS
    'Values of the day kept out of the measurements by the plausibility rules (both devices)';
