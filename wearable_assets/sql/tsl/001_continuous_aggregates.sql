-- Continuous aggregates and compression for wearables.fitbit_intraday.
-- Timescale-licensed features: the migration runner applies this file only where
-- timescaledb.license = 'timescale' and logs why it skipped it elsewhere (Apache edition).
-- The rollup assets work either way: wearables.intraday_hourly is refreshed by the pipeline;
-- these views add 1-minute and UTC-day resolutions and keep themselves fresh.
--
-- Created WITH NO DATA because migrations run inside a transaction (a populating CREATE cannot);
-- the refresh policies fill them, and the intraday_hourly asset refreshes the span of every
-- participant-day it rolls up, so backfilled past days (older than the policies' look-back)
-- reach the aggregates too.

CREATE MATERIALIZED VIEW wearables.fitbit_intraday_1min
WITH (timescaledb.continuous) AS
SELECT participant_id, metric, time_bucket(interval '1 minute', ts) AS bucket,
       count(*) AS n_samples, avg(value) AS mean_value, min(value) AS min_value,
       max(value) AS max_value, sum(value) AS sum_value
  FROM wearables.fitbit_intraday
 GROUP BY participant_id, metric, time_bucket(interval '1 minute', ts)
WITH NO DATA;

-- Hierarchical: hours from minutes, days from hours (re-aggregating sums and counts, so the
-- mean stays sample-weighted).
CREATE MATERIALIZED VIEW wearables.fitbit_intraday_1h
WITH (timescaledb.continuous) AS
SELECT participant_id, metric, time_bucket(interval '1 hour', bucket) AS bucket,
       sum(n_samples) AS n_samples, sum(sum_value) / sum(n_samples) AS mean_value,
       min(min_value) AS min_value, max(max_value) AS max_value, sum(sum_value) AS sum_value
  FROM wearables.fitbit_intraday_1min
 GROUP BY participant_id, metric, time_bucket(interval '1 hour', bucket)
WITH NO DATA;

-- UTC days. Participant-local days are in wearables.participant_day_summary.
CREATE MATERIALIZED VIEW wearables.fitbit_intraday_1d
WITH (timescaledb.continuous) AS
SELECT participant_id, metric, time_bucket(interval '1 day', bucket) AS bucket,
       sum(n_samples) AS n_samples, sum(sum_value) / sum(n_samples) AS mean_value,
       min(min_value) AS min_value, max(max_value) AS max_value, sum(sum_value) AS sum_value
  FROM wearables.fitbit_intraday_1h
 GROUP BY participant_id, metric, time_bucket(interval '1 day', bucket)
WITH NO DATA;

-- Look-backs cover the schedule's trailing re-pull window (3 days) with room to spare.
SELECT add_continuous_aggregate_policy('wearables.fitbit_intraday_1min',
       start_offset => interval '7 days', end_offset => interval '1 minute',
       schedule_interval => interval '15 minutes');
SELECT add_continuous_aggregate_policy('wearables.fitbit_intraday_1h',
       start_offset => interval '7 days', end_offset => interval '1 hour',
       schedule_interval => interval '1 hour');
SELECT add_continuous_aggregate_policy('wearables.fitbit_intraday_1d',
       start_offset => interval '14 days', end_offset => interval '1 day',
       schedule_interval => interval '1 day');

-- Compression: segment by the idempotency key's leading columns so one participant's metric
-- decompresses alone. Only chunks older than 30 days are compressed: re-pulls (3 days) and
-- most backfills write to uncompressed chunks, where DELETE + COPY is ~2.5x faster.
ALTER TABLE wearables.fitbit_intraday SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'participant_id, metric',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('wearables.fitbit_intraday', compress_after => interval '30 days');
