"""The compliance SQL: one derivation of each participant-day's state, used by every reader.

``CELLS`` turns the participant-day summary, the ingest status and the authorisation state into
exactly one state per participant, local day and device (``fitbit``, ``actigraph``) plus a
combined one, each with the reason a coordinator reads on hover (vocabulary: ``states.py``). The
read API's grid, its CSV export, the per-participant counts, the cohort adherence and the daily
alert rules all run this same statement, so the dashboard, the export and the alerts can never
disagree about a day.

Why not read ``participant_day_summary.valid_day`` alone: a day without a summary row (not
ingested yet, or held back because its heart rate is implausible) must still show *why*, and a
participant whose token died must read "needs re-consent" on the days that can no longer be
fetched, which the summary only knows once an ingest tried.

Every statement reads only tables the API's login may read (the tokens through the view
``wearables.auth_states``); every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from wearable_assets.plausibility import FITBIT_RANGES, RULE_VERSION
from wearable_assets.rollups.refresh import ValidDayRule

#: Heart-rate metrics whose stored values are probed on loaded days not summarised yet (values
#: stored before the plausibility rules existed; newer loads quarantine them instead).
HEART_RATE_METRICS = ("heart_rate", "resting_heart_rate")

#: Longest grid window, in days: a quarter of a year fits on a screen and answers in milliseconds.
MAX_WINDOW_DAYS = 92

_PEOPLE = """
people AS (
    SELECT p.participant_id, p.study_id, p.time_zone, p.fitbit_provider,
           p.centrepoint_subject_id IS NOT NULL AS has_actigraph, p.enrolled_from, p.enrolled_to,
           a.auth_state, a.reconsent_reason, a.auth_state_since
      FROM wearables.participants p
      LEFT JOIN wearables.auth_states a ON a.participant_id = p.participant_id AND a.provider = p.fitbit_provider
     WHERE p.in_roster
       AND (%(study_id)s::text IS NULL OR p.study_id = %(study_id)s::text)
       AND (%(participant_ids)s::text[] IS NULL OR p.participant_id = ANY(%(participant_ids)s::text[]))
)"""

# One row per participant and local day of [first, last], with what is known about the day.
# A day's data is implausible when its load quarantined values (wearables.quarantined_values,
# plausibility.py) or, for rows stored before the rules, when stored heart rate lies outside them.
# Summarised days read the summary's per-device state (which counts both); loaded days not
# summarised yet look at the quarantine and probe the stored heart rate.
CELLS = f"""
WITH {_PEOPLE},
days AS (
    SELECT pp.*, d::date AS local_date,
           d::date >= pp.enrolled_from AND (pp.enrolled_to IS NULL OR d::date <= pp.enrolled_to) AS enrolled,
           (d::date::timestamp AT TIME ZONE pp.time_zone) AS day_start,
           ((d::date + 1)::timestamp AT TIME ZONE pp.time_zone) AS day_end
      FROM people pp
     CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
),
facts AS (
    SELECT d.*, s.participant_id IS NOT NULL AS summarised, s.day_minutes,
           s.fitbit_reason, s.fitbit_wear_minutes, s.hr_min, s.hr_max, s.resting_hr,
           s.actigraph_reason, s.actigraph_wear_minutes,
           fi.status AS f_status, fi.detail AS f_detail, fi.rows_loaded AS f_rows,
           coalesce(fi.last_device_sync, s.fitbit_last_sync) AS f_sync,
           ci.status AS a_status, ci.detail AS a_detail, ci.rows_loaded AS a_rows,
           coalesce(ci.last_device_sync, s.actigraph_last_sync) AS a_sync,
           s.fitbit_status AS f_state, s.actigraph_status AS a_state,
           (SELECT count(*) FROM wearables.quarantined_values q
             WHERE q.participant_id = d.participant_id AND q.local_date = d.local_date AND q.device = 'fitbit')
             AS f_quarantined,
           (SELECT count(*) FROM wearables.quarantined_values q
             WHERE q.participant_id = d.participant_id AND q.local_date = d.local_date AND q.device = 'actigraph')
             AS a_quarantined
      FROM days d
      LEFT JOIN wearables.participant_day_summary s
        ON s.participant_id = d.participant_id AND s.local_date = d.local_date
      LEFT JOIN wearables.ingest_status fi
        ON fi.participant_id = d.participant_id AND fi.local_date = d.local_date AND fi.source = d.fitbit_provider
      LEFT JOIN wearables.ingest_status ci
        ON ci.participant_id = d.participant_id AND ci.local_date = d.local_date AND ci.source = 'centrepoint'
),
probed AS (
    SELECT f.*,
           CASE WHEN f.summarised THEN f.f_state = 'implausible'
                WHEN f.f_quarantined > 0 THEN true
                WHEN f.f_status = 'ok' AND f.f_rows > 0 THEN EXISTS (
                     SELECT 1 FROM wearables.fitbit_intraday i
                      WHERE i.participant_id = f.participant_id AND i.metric = ANY(%(hr_metrics)s::text[])
                        AND i.ts >= f.day_start AND i.ts < f.day_end
                        AND (i.value < %(hr_low)s OR i.value > %(hr_high)s))
                ELSE false END AS f_implausible,
           CASE WHEN f.summarised THEN f.a_state = 'implausible' ELSE f.a_quarantined > 0 END AS a_implausible
      FROM facts f
),
device AS (
    SELECT p.*,
           CASE
             WHEN NOT p.enrolled THEN 'outside_enrolment'
             WHEN p.fitbit_provider IS NULL THEN 'no_device'
             WHEN p.f_status = 'needs_reconsent' OR (p.f_status IS NULL AND p.auth_state = 'needs_reconsent')
               THEN 'needs_reconsent'
             WHEN p.f_status = 'api_error' THEN 'provider_error'
             WHEN p.f_implausible THEN 'implausible_data'
             WHEN p.fitbit_reason IN ('complete', 'true_zero') THEN 'valid'
             WHEN p.fitbit_reason = 'not_worn' AND p.fitbit_wear_minutes > 0 THEN 'worn_below_rule'
             WHEN p.fitbit_reason = 'not_worn' THEN 'not_worn'
             ELSE 'not_synced_yet'
           END AS fitbit_state,
           CASE
             WHEN NOT p.enrolled THEN 'outside_enrolment'
             WHEN NOT p.has_actigraph THEN 'no_device'
             WHEN p.a_status = 'needs_reconsent' THEN 'needs_reconsent'
             WHEN p.a_status = 'api_error' THEN 'provider_error'
             WHEN p.a_implausible THEN 'implausible_data'
             WHEN p.actigraph_reason IN ('complete', 'true_zero') THEN 'valid'
             WHEN p.actigraph_reason = 'not_worn' AND p.actigraph_wear_minutes > 0 THEN 'worn_below_rule'
             WHEN p.actigraph_reason = 'not_worn' THEN 'not_worn'
             ELSE 'not_synced_yet'
           END AS actigraph_state
      FROM probed p
),
explained AS (
    SELECT d.*,
           CASE d.fitbit_state
             WHEN 'outside_enrolment' THEN format('outside the enrolment window %%s to %%s', d.enrolled_from,
                                                  coalesce(d.enrolled_to::text, 'open'))
             WHEN 'no_device' THEN 'no Fitbit in the roster'
             WHEN 'needs_reconsent' THEN format('authorisation needs re-consent (%%s)%%s',
                  coalesce(d.reconsent_reason, 'reason unknown'),
                  CASE WHEN d.auth_state = 'needs_reconsent'
                       THEN ' since ' || to_char(d.auth_state_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"')
                       ELSE '' END)
             WHEN 'provider_error' THEN 'provider error: ' || coalesce(d.f_detail, 'no detail')
             WHEN 'implausible_data' THEN CASE
                  WHEN d.f_quarantined > 0 THEN format('%%s value(s) outside the plausibility rules (v%%s) '
                       'quarantined; the rest of the day is used', d.f_quarantined, %(rule_version)s::text)
                  ELSE format('stored heart rate outside %%s-%%s bpm, left out of the rollups', %(hr_low)s::text,
                              %(hr_high)s::text) END
             WHEN 'valid' THEN format('%%s wear min (rule: %%s)', d.fitbit_wear_minutes, %(min_wear)s::int)
             WHEN 'worn_below_rule' THEN format('%%s wear min, below the rule''s %%s; synced %%s',
                  d.fitbit_wear_minutes, %(min_wear)s::int, to_char(d.f_sync AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"'))
             WHEN 'not_worn' THEN 'no wear; ' || coalesce('synced ' || to_char(d.f_sync AT TIME ZONE 'UTC',
                  'YYYY-MM-DD HH24:MI"Z"') || ', after the day ended', 'data arrived without wear')
             ELSE CASE WHEN d.f_status IS NULL THEN 'not ingested yet'
                       WHEN NOT d.summarised OR d.fitbit_reason IN ('api_error', 'needs_reconsent')
                         THEN 'loaded, not summarised yet'
                       WHEN d.f_sync IS NULL THEN 'no device sync since the day ended'
                       ELSE 'last device sync ' || to_char(d.f_sync AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"')
                            || ', before the day ended' END
           END AS fitbit_reason_text,
           CASE d.actigraph_state
             WHEN 'outside_enrolment' THEN format('outside the enrolment window %%s to %%s', d.enrolled_from,
                                                  coalesce(d.enrolled_to::text, 'open'))
             WHEN 'no_device' THEN 'no ActiGraph in the roster'
             WHEN 'needs_reconsent' THEN 'CentrePoint refused access: ' || coalesce(d.a_detail, 'no detail')
             WHEN 'provider_error' THEN 'provider error: ' || coalesce(d.a_detail, 'no detail')
             WHEN 'implausible_data' THEN format('%%s field(s) outside the plausibility rules (v%%s) quarantined',
                                                 d.a_quarantined, %(rule_version)s::text)
             WHEN 'valid' THEN format('%%s wear min (rule: %%s)', d.actigraph_wear_minutes, %(min_wear)s::int)
             WHEN 'worn_below_rule' THEN format('%%s wear min, below the rule''s %%s', d.actigraph_wear_minutes,
                                                %(min_wear)s::int)
             WHEN 'not_worn' THEN 'no wear recorded'
             ELSE CASE WHEN d.a_status IS NULL AND d.actigraph_reason IS NULL THEN 'not ingested yet'
                       WHEN NOT d.summarised OR d.actigraph_reason IN ('api_error', 'needs_reconsent')
                         THEN 'loaded, not summarised yet'
                       WHEN d.a_sync IS NULL THEN 'no device upload since the day ended'
                       ELSE 'last upload ' || to_char(d.a_sync AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"')
                            || ', before the day ended' END
           END AS actigraph_reason_text
      FROM device d
)
SELECT e.participant_id, e.study_id, e.local_date,
       CASE
         WHEN NOT e.enrolled THEN 'outside_enrolment'
         WHEN e.fitbit_state = 'no_device' AND e.actigraph_state = 'no_device' THEN 'no_device'
         WHEN 'valid' IN (e.fitbit_state, e.actigraph_state) THEN 'valid'
         ELSE (SELECT s FROM unnest(%(order)s::text[]) WITH ORDINALITY AS o(s, n)
                WHERE s IN (e.fitbit_state, e.actigraph_state) ORDER BY n LIMIT 1)
       END AS state,
       CASE
         WHEN NOT e.enrolled THEN e.fitbit_reason_text
         WHEN e.fitbit_state = 'no_device' AND e.actigraph_state = 'no_device' THEN 'no device in the roster'
         ELSE concat_ws('; ', CASE WHEN e.fitbit_state <> 'no_device' THEN 'fitbit: ' || e.fitbit_reason_text END,
                              CASE WHEN e.actigraph_state <> 'no_device' THEN 'actigraph: ' || e.actigraph_reason_text END)
       END AS reason,
       e.fitbit_state, e.fitbit_reason_text AS fitbit_reason, e.actigraph_state, e.actigraph_reason_text AS actigraph_reason
  FROM explained e
 ORDER BY e.participant_id, e.local_date"""

CELL_COLUMNS = ("participant_id", "study_id", "local_date", "state", "reason", "fitbit_state", "fitbit_reason",
                "actigraph_state", "actigraph_reason")

PEOPLE_PAGE = f"""
WITH {_PEOPLE},
sync AS (
    SELECT i.participant_id, max(i.last_device_sync) AS last_sync,
           max(i.last_device_sync) FILTER (WHERE i.source <> 'centrepoint') AS fitbit_last_sync,
           max(i.last_device_sync) FILTER (WHERE i.source = 'centrepoint') AS actigraph_last_sync
      FROM wearables.ingest_status i JOIN people USING (participant_id)
     GROUP BY i.participant_id
)
SELECT pp.participant_id, pp.study_id, pp.time_zone, pp.fitbit_provider, pp.has_actigraph,
       pp.enrolled_from, pp.enrolled_to,
       CASE WHEN pp.fitbit_provider IS NULL THEN NULL ELSE coalesce(pp.auth_state, 'not_connected') END AS auth_state,
       pp.reconsent_reason, pp.auth_state_since,
       s.last_sync, s.fitbit_last_sync, s.actigraph_last_sync,
       count(*) OVER () AS _total
  FROM people pp LEFT JOIN sync s USING (participant_id)
 ORDER BY pp.participant_id
 LIMIT %(limit)s OFFSET %(offset)s"""

STUDIES = "SELECT study_id, count(*) AS participants FROM wearables.participants WHERE in_roster GROUP BY 1 ORDER BY 1"


def _params(first: date, last: date, study_id: str | None, participant_ids: list[str] | None) -> dict[str, Any]:
    low, high = FITBIT_RANGES["heart_rate"].low, FITBIT_RANGES["heart_rate"].high
    from wearable_assets.compliance.states import COMBINED_ORDER

    return {"first": first, "last": last, "study_id": study_id, "participant_ids": participant_ids,
            "hr_low": low, "hr_high": high, "hr_metrics": list(HEART_RATE_METRICS), "rule_version": RULE_VERSION,
            "min_wear": ValidDayRule.from_env().min_wear_minutes, "order": list(COMBINED_ORDER)}


def cells(conn: psycopg.Connection, first: date, last: date, *, study_id: str | None = None,
          participant_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per participant (in the roster) and local day of ``[first, last]``: ``CELL_COLUMNS``."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(CELLS, _params(first, last, study_id, participant_ids)).fetchall()


@dataclass(frozen=True)
class Grid:
    first: date
    last: date
    as_of: date
    total_participants: int
    participants: list[dict[str, Any]]


def grid(conn: psycopg.Connection, first: date, last: date, as_of: date, *, study_id: str | None,
         limit: int, offset: int) -> Grid:
    """A page of participants (by id) with their cells over ``[first, last]`` and their facts.

    ``valid_days_last_7/14/28`` count valid cells among the 7/14/28 local days before ``as_of``
    (today is still filling up, so it never counts), from the same derivation as the cells.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        people = cur.execute(PEOPLE_PAGE, {"study_id": study_id, "participant_ids": None, "limit": limit,
                                           "offset": offset}).fetchall()
        if not people and offset > 0:
            counted = cur.execute(f"WITH {_PEOPLE} SELECT count(*) AS n FROM people",
                                  {"study_id": study_id, "participant_ids": None}).fetchone()
            total = int(counted["n"]) if counted else 0
        else:
            total = int(people[0]["_total"]) if people else 0
    ids = [p["participant_id"] for p in people]
    by_id: dict[str, dict[str, Any]] = {}
    for person in people:
        del person["_total"]
        person.update(cells=[], valid_days_last_7=0, valid_days_last_14=0, valid_days_last_28=0,
                      enrolled_days_last_28=0)
        by_id[person["participant_id"]] = person
    if ids:
        for cell in cells(conn, first, last, participant_ids=ids):
            by_id[cell["participant_id"]]["cells"].append(
                {k: cell[k] for k in CELL_COLUMNS if k not in ("participant_id", "study_id")})
        for cell in cells(conn, as_of - timedelta(days=28), as_of - timedelta(days=1), participant_ids=ids):
            person = by_id[cell["participant_id"]]
            age = (as_of - cell["local_date"]).days
            if cell["state"] not in ("outside_enrolment",):
                person["enrolled_days_last_28"] += 1
            if cell["state"] == "valid":
                for window in (7, 14, 28):
                    if age <= window:
                        person[f"valid_days_last_{window}"] += 1
    return Grid(first, last, as_of, total, people)


def cohort(conn: psycopg.Connection, first: date, last: date, study_id: str | None) -> list[dict[str, Any]]:
    """Per study and ISO week (Monday start) of the window: valid / enrolled participant-days.

    A week cut by the window says so in ``days_in_window``; participant-days outside enrolment
    are not counted, every other state counts against adherence (as in ``cohort_week``).
    """
    rows: dict[tuple[str, date], dict[str, Any]] = {}
    for cell in cells(conn, first, last, study_id=study_id):
        day: date = cell["local_date"]
        week_start = day - timedelta(days=day.weekday())
        key = (cell["study_id"], week_start)
        iso = week_start.isocalendar()
        row = rows.setdefault(key, {"study_id": cell["study_id"], "iso_year": iso[0], "iso_week": iso[1],
                                    "week_start": week_start, "days": set(), "participants": set(),
                                    "participant_days": 0, "valid_days": 0, "states": {}})
        row["days"].add(day)
        row["states"][cell["state"]] = row["states"].get(cell["state"], 0) + 1
        if cell["state"] != "outside_enrolment":
            row["participants"].add(cell["participant_id"])
            row["participant_days"] += 1
            row["valid_days"] += cell["state"] == "valid"
    out = []
    for key in sorted(rows):
        row = rows[key]
        days, people = row.pop("days"), row.pop("participants")
        row["days_in_window"] = len(days)
        row["enrolled_participants"] = len(people)
        row["adherence_pct"] = (round(100.0 * row["valid_days"] / row["participant_days"], 1)
                                if row["participant_days"] else None)
        out.append(row)
    return out


def studies(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(STUDIES).fetchall()
