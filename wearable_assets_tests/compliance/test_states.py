"""Every compliance state, per device and combined, from rows seeded in the real database, as the
read API (JSON and CSV) and the shared SQL derivation give them."""

from __future__ import annotations

import csv
import io
from datetime import date

import psycopg
import requests

from wearable_assets.compliance import queries
from wearable_assets.compliance.states import STATES
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.compliance import cohort
from wearable_assets_tests.serving.servers import RunningApi

WINDOW = {"start": cohort.FIRST.isoformat(), "end": cohort.LAST.isoformat(), "as_of": "2026-11-09"}


def test_the_cohort_covers_every_state() -> None:
    assert set(STATES) == cohort.ALL_STATES


def test_the_sql_derivation_gives_each_day_its_state(timescale: TimescaleResource, seeded: dict) -> None:
    with psycopg.connect(timescale.dsn) as conn:
        rows = queries.cells(conn, cohort.FIRST, cohort.LAST)
    got = {(r["participant_id"], r["local_date"]): (r["state"], r["fitbit_state"], r["actigraph_state"]) for r in rows}
    assert got == cohort.EXPECTED
    assert all(r["reason"] for r in rows)


def test_grid_endpoint_states_reasons_and_participant_facts(compliance_api: RunningApi) -> None:
    response = requests.get(f"{compliance_api.url}/compliance/grid", params=WINDOW, timeout=30)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["days"] == [d.isoformat() for d in cohort.DAYS]
    assert page["total_participants"] == len(cohort.PEOPLE) and page["next_offset"] is None
    got = {(p["participant_id"], date.fromisoformat(c["local_date"])): (c["state"], c["fitbit_state"],
                                                                        c["actigraph_state"])
           for p in page["participants"] for c in p["cells"]}
    assert got == cohort.EXPECTED
    people = {p["participant_id"]: p for p in page["participants"]}
    # valid days in the 7 days before 2026-11-09 (the whole window)
    expected_valid = {pid: sum(1 for (p, _), t in cohort.EXPECTED.items() if p == pid and t[0] == "valid")
                      for pid in people}
    assert {pid: p["valid_days_last_7"] for pid, p in people.items()} == expected_valid
    assert all(p["valid_days_last_7"] <= p["valid_days_last_14"] <= p["valid_days_last_28"] for p in people.values())
    legacy = people["R001"]
    assert legacy["auth_state"] == "needs_reconsent" and legacy["reconsent_reason"] == "gone_410"
    assert legacy["auth_state_since"] is not None
    assert people["N001"]["auth_state"] is None and people["V001"]["auth_state"] == "active"
    assert people["V001"]["last_sync"] == max(people["V001"]["fitbit_last_sync"], people["V001"]["actigraph_last_sync"])
    cells = {(p["participant_id"], c["local_date"]): c for p in page["participants"] for c in p["cells"]}
    assert "since" in cells[("R001", "2026-11-04")]["reason"]
    assert "outside the enrolment window 2026-11-03 to 2026-11-07" in cells[("F001", "2026-11-02")]["reason"]
    assert "200 wear min, below the rule's 600" in cells[("F001", "2026-11-04")]["reason"]
    assert "heart rate outside 25-250 bpm" in cells[("H001", "2026-11-02")]["fitbit_reason"]


def test_grid_filters_by_study_and_pages(compliance_api: RunningApi) -> None:
    url = f"{compliance_api.url}/compliance/grid"
    only = requests.get(url, params={**WINDOW, "study_id": cohort.OTHER_STUDY}, timeout=30).json()
    assert [p["participant_id"] for p in only["participants"]] == ["N001"]
    seen, offset = [], 0
    while offset is not None:
        page = requests.get(url, params={**WINDOW, "study_id": cohort.STUDY, "limit": 2, "offset": offset},
                            timeout=30).json()
        assert page["total_participants"] == 5
        seen += [p["participant_id"] for p in page["participants"]]
        offset = page["next_offset"]
    assert seen == sorted(p.participant_id for p in cohort.PEOPLE if p.study_id == cohort.STUDY)
    past = requests.get(url, params={**WINDOW, "offset": 50}, timeout=30).json()
    assert past["participants"] == [] and past["total_participants"] == 6


def test_csv_export_is_exactly_the_grid(compliance_api: RunningApi) -> None:
    url = f"{compliance_api.url}/compliance/grid"
    params = {**WINDOW, "study_id": cohort.STUDY, "limit": 3, "offset": 1}
    page = requests.get(url, params=params, timeout=30).json()
    response = requests.get(url, params={**params, "format": "csv"}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    shown = [(p["participant_id"], c["local_date"], c["state"], c["reason"], c["fitbit_state"], c["actigraph_reason"],
              str(p["valid_days_last_28"])) for p in page["participants"] for c in p["cells"]]
    assert [(r["participant_id"], r["local_date"], r["state"], r["reason"], r["fitbit_state"], r["actigraph_reason"],
             r["valid_days_last_28"]) for r in rows] == shown
    assert len(rows) == 3 * 7


def test_cohort_adherence_per_study_and_iso_week(compliance_api: RunningApi) -> None:
    weeks = requests.get(f"{compliance_api.url}/compliance/cohort", params={k: WINDOW[k] for k in ("start", "end")},
                         timeout=30).json()
    by_study = {w["study_id"]: w for w in weeks}
    assert set(by_study) == {cohort.STUDY, cohort.OTHER_STUDY}
    c1 = by_study[cohort.STUDY]
    assert (c1["iso_year"], c1["iso_week"], c1["week_start"], c1["days_in_window"]) == (2026, 45, "2026-11-02", 7)
    enrolled = [t for (pid, _), t in cohort.EXPECTED.items() if pid != "N001" and t[0] != "outside_enrolment"]
    valid = [t for t in enrolled if t[0] == "valid"]
    assert (c1["participant_days"], c1["valid_days"]) == (len(enrolled), len(valid))
    assert c1["adherence_pct"] == round(100 * len(valid) / len(enrolled), 1)
    assert by_study[cohort.OTHER_STUDY]["valid_days"] == 0 and by_study[cohort.OTHER_STUDY]["adherence_pct"] == 0


def test_bad_parameters_are_400(compliance_api: RunningApi) -> None:
    url = f"{compliance_api.url}/compliance/grid"
    for params, text in (({"study_id": "nope"}, "unknown study"), ({"start": "2026-11-09", "end": "2026-11-01"},
                                                                      "is after"),
                         ({"start": "2026-01-01", "end": "2026-11-01"}, "at most 92"),
                         ({"format": "xml"}, "format"), ({"limit": "0"}, "limit"), ({"end": "1700000000"}, "YYYY-MM-DD")):
        response = requests.get(url, params=params, timeout=30)
        assert response.status_code == 400, (params, response.text)
        assert text in response.json()["detail"], (params, response.text)


def test_a_day_re_ingested_after_its_summary_waits_for_the_rollup(timescale: TimescaleResource, seeded: dict) -> None:
    """V001's Fitbit failed on 11-04 (summarised so); the retry loaded the day but the rollup has not
    run again: the cell must not keep showing the old provider error, nor guess a verdict."""
    from wearable_assets.participant_day import ParticipantDay
    from wearable_assets.rollups import refresh

    day = cohort.DAYS[2]
    timescale.execute("UPDATE wearables.ingest_status SET status = 'ok', detail = NULL, last_device_sync = %s "
                      "WHERE participant_id = 'V001' AND local_date = %s AND source = 'google_health'",
                      (cohort.after(cohort.BOTH, day), day))

    def fitbit_cell() -> tuple[str, str]:
        with psycopg.connect(timescale.dsn) as conn:
            (cell,) = queries.cells(conn, day, day, participant_ids=["V001"])
        return cell["fitbit_state"], cell["fitbit_reason"]

    assert fitbit_cell() == ("not_synced_yet", "loaded, not summarised yet")
    refresh.refresh_participant_day_summary(timescale, [ParticipantDay(day, "V001")], refresh.ValidDayRule())
    state, reason = fitbit_cell()
    assert state == "not_worn" and reason.startswith("no wear; synced ")
