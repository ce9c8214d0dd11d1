-- ActiGraph CentrePoint daily statistics: one row per participant, local day and
-- daily-statistics setting. The commonly used measures are typed columns; the full API record
-- is kept in `record` so nothing the API sends (optional blocks, fields added later) is lost.
-- Written by the asset actigraph/daily_statistics (wearable_assets/actigraph/assets.py), which
-- replaces a participant-day's rows in one transaction, so re-runs never duplicate.

CREATE TABLE wearables.actigraph_daily_statistics (
    participant_id      text NOT NULL,
    local_date          date NOT NULL,          -- the subject's civil day (not the UTC date)
    setting_id          bigint NOT NULL,        -- stable number for setting_guid (first 8 bytes)
    study_id            text NOT NULL,          -- CentrePoint study id
    subject_id          text NOT NULL,          -- CentrePoint subject id
    setting_guid        text,                   -- the API's dailyStatisticsSettingId
    daily_statistic_id  bigint,                 -- the API's id (may change when a day is recomputed)
    wear_minutes        int,
    non_wear_minutes    int,
    sleep_minutes       int,
    total_counts        bigint,                 -- vector-magnitude counts over wear time
    steps               int,                    -- MAVM or UWF wear-time steps; NULL if not configured
    mets                double precision,       -- mean METs over wear time; NULL if not configured
    calories            double precision,       -- wear-time kcal; NULL if not configured
    sedentary_minutes   int,                    -- cut-point minutes over wear time; all NULL when
    light_minutes       int,                    -- the study has no cut-point block
    moderate_minutes    int,
    vigorous_minutes    int,
    mvpa_minutes        int,
    cutpoint_algorithm  text,                   -- crouter | freedson | evenson | staudenmayer
    is_valid_day        boolean NOT NULL,       -- wear_minutes >= 600
    first_epoch_utc     timestamptz,
    last_epoch_utc      timestamptz,
    record              jsonb NOT NULL,
    loaded_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, local_date, setting_id)
);

-- Daily rows are few, so chunks are wide (about a quarter each).
SELECT create_hypertable('wearables.actigraph_daily_statistics', 'local_date',
                         chunk_time_interval => interval '90 days');
