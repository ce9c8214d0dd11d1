"""The rollup SQL, kept in one place so the assets, checks and tests run the same statements.

Every statement works on a *set* of participant-days passed as two parallel arrays
(``%(participant_ids)s``, ``%(dates)s``), so a ranged run of 500 participant-days is one
DELETE and one INSERT … SELECT instead of 500 round trips. A participant-day is the
participant's civil day: ``[local midnight, next local midnight)`` in the time zone stored in
``wearables.participants`` — the same window the Fitbit loader uses, so the rollups see exactly
the rows one partition wrote.
"""

from __future__ import annotations

# The participant-days of a run with their UTC bounds and roster fields.
TARGETS = """
targets AS (
    SELECT t.participant_id, t.local_date, p.study_id, p.time_zone, p.fitbit_provider,
           p.centrepoint_subject_id, p.enrolled_from, p.enrolled_to,
           (t.local_date::timestamp AT TIME ZONE p.time_zone) AS day_start,
           ((t.local_date + 1)::timestamp AT TIME ZONE p.time_zone) AS day_end
      FROM unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS t(participant_id, local_date)
      JOIN wearables.participants p USING (participant_id)
)"""

# How the statements below read wearables.fitbit_intraday: ``targets × metrics``, then one
# LATERAL subquery per (participant-day, metric) that aggregates its samples. Why: written as a
# plain join the planner hashes the whole hypertable (every chunk, every participant), filters
# afterwards and then sorts the result on disk: seconds per ranged run on one week of data,
# growing with the study's history. The lateral form is one index range scan on the
# (participant_id, metric, ts) key per pair, touching exactly the participant-day's rows (chunks
# outside its window are excluded at run time), and each pair aggregates a small group in memory.
# ``%(metrics)s`` is the canonical vocabulary (fitbit.metrics): the loader rejects other metrics.
# ``%(lows)s`` / ``%(highs)s`` are each metric's plausibility range (wearable_assets/plausibility.py):
# the loader quarantines values outside them, so normally every row is inside; rows loaded before
# the rules existed (or written around the loader) are left out of every rollup here too, and
# counted, so they neither skew a participant-day nor block the others.

# Whole UTC days covering a run's participant-days (continuous aggregates refresh whole buckets).
TARGET_SPAN = f"""
WITH {TARGETS}
SELECT date_trunc('day', min(day_start), 'UTC'), date_trunc('day', max(day_end), 'UTC') + interval '1 day'
  FROM targets"""

UNKNOWN_PARTICIPANTS = """
SELECT DISTINCT t.participant_id
  FROM unnest(%(participant_ids)s::text[]) AS t(participant_id)
 WHERE NOT EXISTS (SELECT 1 FROM wearables.participants p WHERE p.participant_id = t.participant_id)
 ORDER BY 1"""

# --- intraday_hourly ---------------------------------------------------------------------------
DELETE_HOURLY = f"""
WITH {TARGETS}
DELETE FROM wearables.intraday_hourly h
 USING targets t
 WHERE h.participant_id = t.participant_id AND h.local_date = t.local_date
   AND h.bucket >= t.day_start - interval '1 hour' AND h.bucket < t.day_end"""

INSERT_HOURLY = f"""
WITH {TARGETS}
INSERT INTO wearables.intraday_hourly
       (participant_id, local_date, metric, bucket, local_hour,
        n_samples, mean_value, min_value, max_value, sum_value)
SELECT t.participant_id, t.local_date, m.metric, h.bucket,
       extract(hour FROM h.bucket AT TIME ZONE t.time_zone)::smallint,
       h.n_samples, h.mean_value, h.min_value, h.max_value, h.sum_value
  FROM targets t
 CROSS JOIN unnest(%(metrics)s::text[], %(lows)s::float8[], %(highs)s::float8[]) AS m(metric, low, high)
 CROSS JOIN LATERAL (
       SELECT time_bucket('1 hour', i.ts) AS bucket, count(*) AS n_samples, avg(i.value) AS mean_value,
              min(i.value) AS min_value, max(i.value) AS max_value, sum(i.value) AS sum_value
         FROM wearables.fitbit_intraday i
        WHERE i.participant_id = t.participant_id AND i.metric = m.metric
          AND i.ts >= t.day_start AND i.ts < t.day_end
          AND i.value BETWEEN m.low AND m.high
        GROUP BY 1) h"""

# --- participant_day_summary -------------------------------------------------------------------
DELETE_SUMMARY = """
DELETE FROM wearables.participant_day_summary s
 USING unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS t(participant_id, local_date)
 WHERE s.participant_id = t.participant_id AND s.local_date = t.local_date"""

# Per device: its measures, its ingest status, its state, and a reason (see
# wearable_assets/sql/004_rollups.sql and 007_plausibility.sql for the vocabularies). "Not worn"
# needs evidence that the device reported after the day ended: a last sync at or after the day's
# end, or (when the provider gives no sync time) data for the day. The overall reason is the valid
# device's verdict, else the most actionable
# reason among the devices the participant has: one that someone can fix (re-consent, API
# error) before one that may resolve itself (not synced yet, not ingested), before not worn —
# except that a rostered device that *failed* (needs re-consent, API error, implausible values)
# always names itself (``fitbit_needs_reconsent``, ...): the day is never called ``complete``
# while one of its devices needs someone's attention. ``valid_day`` still only asks whether any
# device was worn long enough (the valid-day rule), and counts plausible values only.
INSERT_SUMMARY = f"""
WITH {TARGETS},
fitbit_metric AS (
    SELECT t.participant_id, t.local_date, m.metric, d.mean, d.min, d.max, d.sum, d.minutes, d.implausible
      FROM targets t
     CROSS JOIN unnest(%(metrics)s::text[], %(lows)s::float8[], %(highs)s::float8[]) AS m(metric, low, high)
     CROSS JOIN LATERAL (
           SELECT avg(v.value) FILTER (WHERE v.ok) AS mean, min(v.value) FILTER (WHERE v.ok) AS min,
                  max(v.value) FILTER (WHERE v.ok) AS max, sum(v.value) FILTER (WHERE v.ok) AS sum,
                  count(DISTINCT date_trunc('minute', v.ts)) FILTER (WHERE m.metric = 'heart_rate' AND v.ok)
                      AS minutes,
                  count(*) FILTER (WHERE NOT v.ok) AS implausible
             FROM (SELECT i.ts, i.value, i.value BETWEEN m.low AND m.high AS ok
                     FROM wearables.fitbit_intraday i
                    WHERE i.participant_id = t.participant_id AND i.metric = m.metric
                      AND i.ts >= t.day_start AND i.ts < t.day_end) v) d
),
fitbit AS (
    -- One row per participant-day; a metric without samples gives NULL (no wear minutes: 0).
    SELECT participant_id, local_date,
           max(mean) FILTER (WHERE metric = 'heart_rate') AS hr_mean,
           max(min) FILTER (WHERE metric = 'heart_rate') AS hr_min,
           max(max) FILTER (WHERE metric = 'heart_rate') AS hr_max,
           max(mean) FILTER (WHERE metric = 'resting_heart_rate') AS resting_hr,
           max(sum) FILTER (WHERE metric = 'steps') AS steps,
           max(sum) FILTER (WHERE metric = 'calories') AS calories,
           max(sum) FILTER (WHERE metric = 'distance') AS distance_m,
           max(sum) FILTER (WHERE metric = 'floors') AS floors,
           max(sum) FILTER (WHERE metric = 'active_zone_minutes') AS active_zone_minutes,
           max(mean) FILTER (WHERE metric = 'spo2') AS spo2_mean,
           max(mean) FILTER (WHERE metric = 'hrv_rmssd') AS hrv_rmssd_mean,
           max(mean) FILTER (WHERE metric = 'breathing_rate') AS breathing_rate_mean,
           max(minutes) FILTER (WHERE metric = 'heart_rate') AS wear_minutes,
           sum(implausible) AS implausible_in_intraday
      FROM fitbit_metric
     GROUP BY participant_id, local_date
),
quarantine AS (
    SELECT t.participant_id, t.local_date,
           count(*) FILTER (WHERE q.device = 'fitbit') AS fitbit,
           count(*) FILTER (WHERE q.device = 'actigraph') AS actigraph
      FROM targets t
      JOIN wearables.quarantined_values q ON q.participant_id = t.participant_id AND q.local_date = t.local_date
     GROUP BY t.participant_id, t.local_date
),
sleep AS (
    SELECT t.participant_id, t.local_date,
           sum(s.minutes) FILTER (WHERE s.stage NOT IN ('wake', 'awake', 'restless')) AS asleep,
           sum(s.minutes) FILTER (WHERE s.stage = 'deep') AS deep,
           sum(s.minutes) FILTER (WHERE s.stage = 'light') AS light,
           sum(s.minutes) FILTER (WHERE s.stage = 'rem') AS rem,
           sum(s.minutes) FILTER (WHERE s.stage IN ('wake', 'awake', 'restless')) AS awake
      FROM targets t
      JOIN (SELECT participant_id, sleep_date, stage, extract(epoch FROM end_ts - start_ts) / 60 AS minutes
              FROM wearables.fitbit_sleep_stages WHERE NOT is_short) s
        ON s.participant_id = t.participant_id AND s.sleep_date = t.local_date
     GROUP BY t.participant_id, t.local_date
),
actigraph AS (
    -- Several daily-statistics settings can exist per study; the one with the most wear wins.
    SELECT DISTINCT ON (a.participant_id, a.local_date)
           a.participant_id, a.local_date, a.wear_minutes, a.sleep_minutes, a.mvpa_minutes, a.steps,
           a.total_counts
      FROM targets t
      JOIN wearables.actigraph_daily_statistics a
        ON a.participant_id = t.participant_id AND a.local_date = t.local_date
     ORDER BY a.participant_id, a.local_date, a.wear_minutes DESC NULLS LAST, a.setting_id
),
joined AS (
    SELECT t.*,
           round(extract(epoch FROM t.day_end - t.day_start) / 60)::int AS day_minutes,
           t.local_date >= t.enrolled_from AND (t.enrolled_to IS NULL OR t.local_date <= t.enrolled_to) AS enrolled,
           f.hr_mean, f.hr_min, f.hr_max, f.resting_hr, f.steps, f.calories, f.distance_m, f.floors,
           f.active_zone_minutes, f.spo2_mean, f.hrv_rmssd_mean, f.breathing_rate_mean,
           CASE WHEN t.fitbit_provider IS NOT NULL THEN coalesce(f.wear_minutes, 0) END AS fitbit_wear_minutes,
           sl.asleep, sl.deep, sl.light, sl.rem, sl.awake,
           fs.status AS fitbit_status, fs.last_device_sync AS fitbit_last_sync, fs.detail AS fitbit_detail,
           a.wear_minutes AS actigraph_wear_minutes, a.sleep_minutes AS actigraph_sleep_minutes,
           a.mvpa_minutes AS actigraph_mvpa_minutes, a.steps AS actigraph_steps,
           a.total_counts AS actigraph_total_counts,
           cs.status AS actigraph_status, cs.last_device_sync AS actigraph_last_sync, cs.detail AS actigraph_detail,
           coalesce(q.fitbit, 0) + coalesce(f.implausible_in_intraday, 0) AS fitbit_quarantined,
           coalesce(q.actigraph, 0) AS actigraph_quarantined
      FROM targets t
      LEFT JOIN fitbit f USING (participant_id, local_date)
      LEFT JOIN quarantine q USING (participant_id, local_date)
      LEFT JOIN sleep sl USING (participant_id, local_date)
      LEFT JOIN actigraph a USING (participant_id, local_date)
      LEFT JOIN wearables.ingest_status fs
        ON fs.participant_id = t.participant_id AND fs.local_date = t.local_date AND fs.source = t.fitbit_provider
      LEFT JOIN wearables.ingest_status cs
        ON cs.participant_id = t.participant_id AND cs.local_date = t.local_date AND cs.source = 'centrepoint'
),
reasons AS (
    SELECT j.*,
           CASE
             WHEN j.fitbit_provider IS NULL THEN NULL
             WHEN j.fitbit_status = 'needs_reconsent' THEN 'needs_reconsent'
             WHEN j.fitbit_status = 'api_error' THEN 'api_error'
             WHEN j.fitbit_wear_minutes >= %(min_wear_minutes)s
               THEN CASE WHEN coalesce(j.steps, 0) = 0 THEN 'true_zero' ELSE 'complete' END
             WHEN j.fitbit_status IS NULL THEN 'not_ingested'
             WHEN j.fitbit_last_sync >= j.day_end THEN 'not_worn'
             WHEN j.fitbit_last_sync IS NULL AND j.fitbit_wear_minutes > 0 THEN 'not_worn'
             ELSE 'not_synced_yet'
           END AS fitbit_reason,
           CASE
             WHEN j.centrepoint_subject_id IS NULL THEN NULL
             WHEN j.actigraph_status = 'needs_reconsent' THEN 'needs_reconsent'
             WHEN j.actigraph_status = 'api_error' THEN 'api_error'
             WHEN j.actigraph_wear_minutes >= %(min_wear_minutes)s
               THEN CASE WHEN coalesce(j.actigraph_total_counts, 0) = 0 THEN 'true_zero' ELSE 'complete' END
             WHEN j.actigraph_status IS NULL AND j.actigraph_wear_minutes IS NULL THEN 'not_ingested'
             WHEN j.actigraph_last_sync >= j.day_end THEN 'not_worn'
             WHEN j.actigraph_last_sync IS NULL AND j.actigraph_wear_minutes IS NOT NULL THEN 'not_worn'
             ELSE 'not_synced_yet'
           END AS actigraph_reason,
           greatest(j.fitbit_wear_minutes, j.actigraph_wear_minutes) AS best_wear
      FROM joined j
),
states AS (
    -- Each device's state for the day: a failure first (someone must act), then what is pending.
    SELECT r.*,
           CASE
             WHEN r.fitbit_provider IS NULL THEN 'not_rostered'
             WHEN r.fitbit_status IN ('needs_reconsent', 'api_error') THEN r.fitbit_status
             WHEN r.fitbit_quarantined > 0 THEN 'implausible'
             WHEN r.fitbit_reason IN ('not_ingested', 'not_synced_yet') THEN r.fitbit_reason
             WHEN r.fitbit_status = 'no_data' THEN 'no_data'
             ELSE 'ok'
           END AS fitbit_state,
           CASE
             WHEN r.centrepoint_subject_id IS NULL THEN 'not_rostered'
             WHEN r.actigraph_status IN ('needs_reconsent', 'api_error') THEN r.actigraph_status
             WHEN r.actigraph_quarantined > 0 THEN 'implausible'
             WHEN r.actigraph_reason IN ('not_ingested', 'not_synced_yet') THEN r.actigraph_reason
             WHEN r.actigraph_status = 'no_data' THEN 'no_data'
             ELSE 'ok'
           END AS actigraph_state
      FROM reasons r
),
verdict AS (
    SELECT s.*,
           CASE
             WHEN NOT s.enrolled THEN 'not_enrolled'
             WHEN s.fitbit_reason IS NULL AND s.actigraph_reason IS NULL THEN 'no_device'
             WHEN s.fitbit_state = 'needs_reconsent' THEN 'fitbit_needs_reconsent'
             WHEN s.actigraph_state = 'needs_reconsent' THEN 'actigraph_needs_reconsent'
             WHEN s.fitbit_state = 'api_error' THEN 'fitbit_api_error'
             WHEN s.actigraph_state = 'api_error' THEN 'actigraph_api_error'
             WHEN s.fitbit_state = 'implausible' THEN 'fitbit_implausible'
             WHEN s.actigraph_state = 'implausible' THEN 'actigraph_implausible'
             WHEN 'complete' IN (s.fitbit_reason, s.actigraph_reason) THEN 'complete'
             WHEN 'true_zero' IN (s.fitbit_reason, s.actigraph_reason) THEN 'true_zero'
             WHEN 'not_synced_yet' IN (s.fitbit_reason, s.actigraph_reason) THEN 'not_synced_yet'
             WHEN 'not_ingested' IN (s.fitbit_reason, s.actigraph_reason) THEN 'not_ingested'
             ELSE 'not_worn'
           END AS overall
      FROM states s
)
INSERT INTO wearables.participant_day_summary (
       participant_id, local_date, study_id, time_zone, enrolled, day_minutes,
       fitbit_source, hr_mean, hr_min, hr_max, resting_hr, steps, calories, distance_m, floors,
       active_zone_minutes, sleep_minutes_asleep, sleep_minutes_deep, sleep_minutes_light,
       sleep_minutes_rem, sleep_minutes_awake, spo2_mean, hrv_rmssd_mean, breathing_rate_mean,
       fitbit_wear_minutes, fitbit_status, fitbit_last_sync, fitbit_reason,
       actigraph_wear_minutes, actigraph_sleep_minutes, actigraph_mvpa_minutes, actigraph_steps,
       actigraph_total_counts, actigraph_status, actigraph_last_sync, actigraph_reason,
       wear_minutes, completeness, valid_day, valid_day_rule, valid_day_rule_version,
       completeness_reason, completeness_detail, quarantined_values)
SELECT v.participant_id, v.local_date, v.study_id, v.time_zone, v.enrolled, v.day_minutes,
       v.fitbit_provider, v.hr_mean, v.hr_min, v.hr_max, v.resting_hr, v.steps, v.calories, v.distance_m,
       v.floors, v.active_zone_minutes, v.asleep, v.deep, v.light, v.rem, v.awake,
       v.spo2_mean, v.hrv_rmssd_mean, v.breathing_rate_mean,
       v.fitbit_wear_minutes, v.fitbit_state, v.fitbit_last_sync, v.fitbit_reason,
       v.actigraph_wear_minutes, v.actigraph_sleep_minutes, v.actigraph_mvpa_minutes, v.actigraph_steps,
       v.actigraph_total_counts, v.actigraph_state, v.actigraph_last_sync, v.actigraph_reason,
       v.best_wear,
       least(coalesce(v.best_wear, 0)::float8 / v.day_minutes, 1.0),
       v.enrolled AND (coalesce(v.fitbit_reason, '') IN ('complete', 'true_zero')
                       OR coalesce(v.actigraph_reason, '') IN ('complete', 'true_zero')),
       %(rule)s, %(rule_version)s,
       v.overall,
       nullif(concat_ws('; ',
              CASE WHEN v.fitbit_reason IS NOT NULL THEN
                   format('fitbit: %%s (%%s wear min%%s%%s)', v.fitbit_reason, v.fitbit_wear_minutes,
                          CASE WHEN v.fitbit_quarantined > 0
                               THEN format(', %%s implausible value(s) quarantined', v.fitbit_quarantined) END,
                          coalesce(', ' || v.fitbit_detail, '')) END,
              CASE WHEN v.actigraph_reason IS NOT NULL THEN
                   format('actigraph: %%s (%%s wear min%%s%%s)', v.actigraph_reason,
                          coalesce(v.actigraph_wear_minutes::text, 'no'),
                          CASE WHEN v.actigraph_quarantined > 0
                               THEN format(', %%s implausible value(s) quarantined', v.actigraph_quarantined) END,
                          coalesce(', ' || v.actigraph_detail, '')) END), ''),
       v.fitbit_quarantined + v.actigraph_quarantined
  FROM verdict v"""

# --- cohort_week -------------------------------------------------------------------------------
DELETE_COHORT_WEEK = "DELETE FROM wearables.cohort_week WHERE week_start = %(week_start)s"

# Enrolled participant-days come from the roster (participants still in it), not from the
# summary, so a day nobody summarised counts as "not valid" instead of silently disappearing.
INSERT_COHORT_WEEK = """
WITH week AS (SELECT %(week_start)s::date AS first_day, %(week_start)s::date + 6 AS last_day),
enrolled_days AS (
    SELECT p.study_id, p.participant_id, d::date AS local_date
      FROM wearables.participants p
     CROSS JOIN week w
     CROSS JOIN LATERAL generate_series(greatest(w.first_day, p.enrolled_from),
                                        least(w.last_day, coalesce(p.enrolled_to, w.last_day)),
                                        interval '1 day') AS d
     WHERE p.in_roster
)
INSERT INTO wearables.cohort_week (study_id, week_start, iso_year, iso_week, enrolled_participants,
                                   participant_days, valid_days, median_steps, mean_resting_hr, adherence_pct)
SELECT e.study_id, w.first_day,
       extract(isoyear FROM w.first_day)::int, extract(week FROM w.first_day)::int,
       count(DISTINCT e.participant_id),
       count(*),
       count(*) FILTER (WHERE s.valid_day),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(s.steps, s.actigraph_steps))
           FILTER (WHERE s.valid_day AND coalesce(s.steps, s.actigraph_steps) IS NOT NULL),
       avg(s.resting_hr),
       round(100.0 * count(*) FILTER (WHERE s.valid_day) / count(*), 1)
  FROM enrolled_days e
 CROSS JOIN week w
  LEFT JOIN wearables.participant_day_summary s USING (participant_id, local_date)
 GROUP BY e.study_id, w.first_day
RETURNING study_id, week_start, iso_year, iso_week, enrolled_participants, participant_days, valid_days,
          median_steps, mean_resting_hr, adherence_pct"""

COHORT_WEEK_COLUMNS = (
    "study_id", "week_start", "iso_year", "iso_week", "enrolled_participants", "participant_days",
    "valid_days", "median_steps", "mean_resting_hr", "adherence_pct",
)

# --- data-quality checks -----------------------------------------------------------------------
# Samples still in fitbit_intraday outside their plausibility range (loaded before the rules, or
# written around the loader): the rollups ignore them; re-loading the participant-day moves them
# into the quarantine.
OUT_OF_RULE = f"""
WITH {TARGETS}
SELECT t.participant_id, t.local_date, m.metric, o.samples, o.min, o.max
  FROM targets t
 CROSS JOIN unnest(%(metrics)s::text[], %(lows)s::float8[], %(highs)s::float8[]) AS m(metric, low, high)
 CROSS JOIN LATERAL (
       SELECT count(*) AS samples, min(i.value) AS min, max(i.value) AS max
         FROM wearables.fitbit_intraday i
        WHERE i.participant_id = t.participant_id AND i.metric = m.metric
          AND i.ts >= t.day_start AND i.ts < t.day_end
          AND NOT (i.value BETWEEN m.low AND m.high)) o
 WHERE o.samples > 0
 ORDER BY 1, 2, 3"""

# What the loaders quarantined, per participant-day, device, metric, rule and reason.
QUARANTINED = """
SELECT q.participant_id, q.local_date, q.device, q.metric, q.rule, q.rule_version, count(*) AS n,
       min(q.value) AS min, max(q.value) AS max, min(q.reason) AS example_reason
  FROM wearables.quarantined_values q
  JOIN unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS t(participant_id, local_date)
    USING (participant_id, local_date)
 WHERE q.device = ANY(%(devices)s::text[])
 GROUP BY 1, 2, 3, 4, 5, 6
 ORDER BY 1, 2, 3, 4"""

# An ActiGraph row is on the right local date when (a) its record's ``date`` (the subject's
# local midnight, written as an instant; naive = already local) falls on that date, nearest
# midnight, and (b) its first and last epochs lie inside the participant's local day.
# An ActiGraph row is on the right local date when it agrees with the loader's rule
# (wearable_assets/actigraph/records.py): (a) the day holding the midpoint of its first/last
# epochs, or without epochs the day its ``date`` names (midnight in its own offset: the date
# part; any other instant: nearest local midnight in the participant's zone; naive: already
# local), is that date; (b) its ``date``, under one of the two readings the API's documentation
# allows (local date written with +00:00, or the UTC instant of local midnight), names that
# date; and (c) its first and last epochs lie inside the participant's local day.
ACTIGRAPH_MISATTRIBUTED = f"""
WITH {TARGETS},
rows AS (
    SELECT a.participant_id, a.local_date, a.setting_id, a.record->>'date' AS record_date,
           a.first_epoch_utc, a.last_epoch_utc, t.day_start, t.day_end, t.time_zone
      FROM targets t
      JOIN wearables.actigraph_daily_statistics a
        ON a.participant_id = t.participant_id AND a.local_date = t.local_date
),
readings AS (
    SELECT r.*,
           r.record_date ~ '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$' AS has_offset,
           r.record_date ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ]00:00:00([.]0+)?(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$' AS is_midnight,
           ((coalesce(r.first_epoch_utc, r.last_epoch_utc)
             + (coalesce(r.last_epoch_utc, r.first_epoch_utc) - coalesce(r.first_epoch_utc, r.last_epoch_utc)) / 2)
             AT TIME ZONE r.time_zone)::date AS epoch_date
      FROM rows r
),
days AS (
    SELECT g.*,
           CASE WHEN g.has_offset THEN left(g.record_date, 10)::date END AS written_date,
           CASE WHEN g.has_offset
                THEN ((g.record_date::timestamptz AT TIME ZONE g.time_zone) + interval '12 hours')::date END AS instant_date,
           CASE WHEN NOT g.has_offset THEN (g.record_date::timestamp + interval '12 hours')::date END AS naive_date
      FROM readings g
)
SELECT participant_id, local_date, setting_id, record_date,
       coalesce(epoch_date, naive_date, CASE WHEN is_midnight THEN written_date ELSE instant_date END)
         AS record_local_date,
       first_epoch_utc, last_epoch_utc
  FROM days
 WHERE coalesce(epoch_date, naive_date, CASE WHEN is_midnight THEN written_date ELSE instant_date END)
         IS DISTINCT FROM local_date
    OR (record_date IS NOT NULL AND local_date IS DISTINCT FROM naive_date
        AND local_date IS DISTINCT FROM written_date AND local_date IS DISTINCT FROM instant_date)
    OR first_epoch_utc < day_start OR first_epoch_utc >= day_end
    OR last_epoch_utc < day_start OR last_epoch_utc >= day_end
 ORDER BY 1, 2, 3"""

# Latest device sync per participant and source the roster says they have.
DEVICE_LAST_SYNC = """
SELECT p.participant_id, src.source, max(s.last_device_sync) AS last_sync, max(s.finished_at) AS last_ingest
  FROM wearables.participants p
 CROSS JOIN LATERAL (VALUES (p.fitbit_provider),
                            (CASE WHEN p.centrepoint_subject_id IS NOT NULL THEN 'centrepoint' END)) AS src(source)
  LEFT JOIN wearables.ingest_status s ON s.participant_id = p.participant_id AND s.source = src.source
 WHERE p.participant_id = ANY(%(participant_ids)s::text[]) AND src.source IS NOT NULL
   AND (p.enrolled_to IS NULL OR p.enrolled_to >= %(since)s)
 GROUP BY p.participant_id, src.source
 ORDER BY 1, 2"""

SUMMARY_ROWS = """
SELECT s.participant_id, s.local_date, s.enrolled, s.valid_day, s.completeness, s.completeness_reason,
       s.completeness_detail
  FROM wearables.participant_day_summary s
  JOIN unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS t(participant_id, local_date)
    USING (participant_id, local_date)
 ORDER BY 1, 2"""

# --- per-participant-day metadata (each partition shows its own numbers) ------------------
HOURLY_PER_DAY = """
SELECT t.participant_id, t.local_date, count(h.*) AS hours, count(DISTINCT h.metric) AS metrics
  FROM unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS t(participant_id, local_date)
  LEFT JOIN wearables.intraday_hourly h USING (participant_id, local_date)
 GROUP BY 1, 2"""

SUMMARY_PER_DAY = """
SELECT s.participant_id, s.local_date, s.completeness_reason, s.valid_day, s.hr_mean, s.resting_hr, s.steps,
       s.wear_minutes, s.completeness, s.fitbit_status, s.actigraph_status, s.quarantined_values
  FROM wearables.participant_day_summary s
  JOIN unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS t(participant_id, local_date)
 USING (participant_id, local_date)"""
