"""TEMPORARY development loader (replaced by the assets-based one once Fitbit + rollups land)."""
from __future__ import annotations
from datetime import date
import psycopg
from wearable_assets.storage.timescale import TimescaleResource

PARTICIPANTS = ("P001", "P002")
DAYS = (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3))


def load(dsn: str) -> tuple[date, ...]:
    TimescaleResource(dsn=dsn).migrate()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("""
INSERT INTO wearables.participants (participant_id, study_id, time_zone, enrolled_from, fitbit_provider) VALUES ('P001','S','America/New_York','2026-10-01','google_health'),('P002','S','Australia/Brisbane','2026-10-01','google_health');
INSERT INTO wearables.fitbit_intraday (participant_id, metric, ts, value, source)
SELECT 'P001','heart_rate', t, 60 + 20*sin(extract(epoch from t)/3600.0), 'google_health' FROM generate_series('2026-11-01 04:00+00'::timestamptz, '2026-11-04 05:00+00', '7 seconds') t WHERE t < '2026-11-04 05:00+00';
INSERT INTO wearables.fitbit_intraday (participant_id, metric, ts, value, source)
SELECT 'P001','steps', t, (extract(minute from t))::int % 7, 'google_health' FROM generate_series('2026-11-01 04:00+00'::timestamptz, '2026-11-04 05:00+00', '1 minute') t WHERE t < '2026-11-04 05:00+00';
INSERT INTO wearables.intraday_hourly (participant_id, local_date, metric, bucket, local_hour, n_samples, mean_value, min_value, max_value, sum_value) SELECT participant_id, (ts AT TIME ZONE 'America/New_York')::date, metric, time_bucket('1 hour', ts), extract(hour from time_bucket('1 hour', ts) AT TIME ZONE 'America/New_York'), count(*), avg(value), min(value), max(value), sum(value) FROM wearables.fitbit_intraday GROUP BY 1,2,3,4;
INSERT INTO wearables.participant_day_summary (participant_id, local_date, study_id, time_zone, enrolled, day_minutes, hr_mean, hr_min, hr_max, steps, completeness, valid_day, valid_day_rule, valid_day_rule_version, completeness_reason)
SELECT 'P001', d.local_date, 'S', 'America/New_York', true, 1440, d.hr_mean, d.hr_min, d.hr_max, d.steps, 1, d.local_date < '2026-11-03', 'x', '1', 'complete' FROM
 (SELECT (ts AT TIME ZONE 'America/New_York')::date AS local_date, avg(value) FILTER (WHERE metric='heart_rate') hr_mean, min(value) FILTER (WHERE metric='heart_rate') hr_min, max(value) FILTER (WHERE metric='heart_rate') hr_max, sum(value) FILTER (WHERE metric='steps') steps FROM wearables.fitbit_intraday GROUP BY 1) d;
INSERT INTO wearables.ingest_status (participant_id, local_date, source, status, rows_loaded, last_device_sync) VALUES ('P001', '2026-11-03', 'google_health', 'ok', 100, '2026-11-04 03:00+00');
""")
    return DAYS
