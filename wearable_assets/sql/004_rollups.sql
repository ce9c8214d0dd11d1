-- Rollup tables, refreshed by the rollup assets (wearable_assets/rollups). Every table is
-- keyed by the partition that writes it, so a re-run deletes and re-inserts exactly its own
-- rows in one transaction. Continuous aggregates (Timescale licence only) are in sql/tsl/.

-- One row per participant, participant-day, metric and UTC hour of wearables.fitbit_intraday.
-- local_date is part of the key because an hour can straddle two participant-days when the
-- participant's UTC offset is not a whole number of hours (India, Newfoundland, ...).
CREATE TABLE wearables.intraday_hourly (
    participant_id  text NOT NULL,
    local_date      date NOT NULL,              -- the participant-day (partition) the samples belong to
    metric          text NOT NULL,              -- vocabulary: wearable_assets/fitbit/metrics.py
    bucket          timestamptz NOT NULL,       -- start of the UTC hour
    local_hour      smallint NOT NULL,          -- hour of day (0-23) on the participant's clock at bucket
    n_samples       integer NOT NULL,
    mean_value      double precision NOT NULL,
    min_value       double precision NOT NULL,
    max_value       double precision NOT NULL,
    -- The hour's total. Meaningful as a value for counters (steps, calories, distance, floors,
    -- active-zone minutes: metrics.py SUMMED); for levels (heart rate, SpO2, ...) it is kept so
    -- that days and weeks can be re-aggregated as sum(sum_value) / sum(n_samples).
    sum_value       double precision NOT NULL,
    refreshed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, local_date, metric, bucket)
);
SELECT create_hypertable('wearables.intraday_hourly', 'bucket',
                         chunk_time_interval => interval '7 days',
                         create_default_indexes => false);

-- One row per participant-day combining both devices, with the valid-day verdict and, when
-- data is missing, why. Reasons (per device and overall):
--   complete         worn for at least the valid-day rule's minutes
--   true_zero        worn long enough, but the activity counter really is zero
--   not_synced_yet   the device has not uploaded anything after the end of that day yet
--   not_worn         the device synced after the day ended, but wear is below the rule
--   needs_reconsent  the participant's authorisation is gone (re-consent needed)
--   api_error        the last ingest attempt failed at the provider
--   not_ingested     no ingest has run for that day yet
--   not_enrolled     the day is outside the participant's enrolment window
--   no_device        the participant has no device in the roster
CREATE TABLE wearables.participant_day_summary (
    participant_id          text NOT NULL,
    local_date              date NOT NULL,
    study_id                text NOT NULL,
    time_zone               text NOT NULL,
    enrolled                boolean NOT NULL,
    day_minutes             integer NOT NULL,   -- 1440, or 1380/1500 on daylight-saving change days
    -- Fitbit / Google Health
    fitbit_source           text,               -- google_health | fitbit_legacy; null = no Fitbit in the roster
    hr_mean                 double precision,
    hr_min                  double precision,
    hr_max                  double precision,
    resting_hr              double precision,
    steps                   double precision,
    calories                double precision,
    distance_m              double precision,
    floors                  double precision,
    active_zone_minutes     double precision,
    sleep_minutes_asleep    double precision,   -- all sleep stages except wake/awake/restless
    sleep_minutes_deep      double precision,
    sleep_minutes_light     double precision,
    sleep_minutes_rem       double precision,
    sleep_minutes_awake     double precision,   -- wake + awake + restless (inside sleep sessions)
    spo2_mean               double precision,
    hrv_rmssd_mean          double precision,
    breathing_rate_mean     double precision,
    fitbit_wear_minutes     integer,            -- minutes with at least one heart-rate sample
    fitbit_status           text,               -- wearables.ingest_status.status of the Fitbit ingest
    fitbit_last_sync        timestamptz,
    fitbit_reason           text,
    -- ActiGraph CentrePoint
    actigraph_wear_minutes  double precision,
    actigraph_sleep_minutes double precision,
    actigraph_mvpa_minutes  double precision,
    actigraph_steps         double precision,
    actigraph_total_counts  double precision,
    actigraph_status        text,
    actigraph_last_sync     timestamptz,
    actigraph_reason        text,
    -- The verdict
    wear_minutes            double precision,   -- the better of the two devices
    completeness            double precision NOT NULL,  -- wear_minutes / day_minutes, 0..1
    valid_day               boolean NOT NULL,
    valid_day_rule          text NOT NULL,      -- human-readable rule, e.g. 'wear_minutes >= 600'
    valid_day_rule_version  text NOT NULL,      -- bump when the rule's logic changes
    completeness_reason     text NOT NULL CHECK (completeness_reason IN (
                                'complete', 'true_zero', 'not_synced_yet', 'not_worn', 'needs_reconsent',
                                'api_error', 'not_ingested', 'not_enrolled', 'no_device')),
    completeness_detail     text,
    computed_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, local_date)
);
CREATE INDEX participant_day_summary_date ON wearables.participant_day_summary (local_date);

-- Per study and ISO week (Monday start): the weekly cohort view analysts and monitors read.
CREATE TABLE wearables.cohort_week (
    study_id                text NOT NULL,
    week_start              date NOT NULL,      -- Monday; the weekly partition key
    iso_year                integer NOT NULL,
    iso_week                integer NOT NULL,
    enrolled_participants   integer NOT NULL,   -- enrolled on at least one day of the week
    participant_days        integer NOT NULL,   -- enrolled participant-days in the week
    valid_days              integer NOT NULL,
    median_steps            double precision,   -- over valid days (Fitbit steps, else ActiGraph steps)
    mean_resting_hr         double precision,
    adherence_pct           double precision,   -- 100 * valid_days / participant_days
    computed_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study_id, week_start)
);
