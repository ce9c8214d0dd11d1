"""The CentrePoint simulator's own contract (what the source tests rely on)."""

from __future__ import annotations

from datetime import date

import requests

from wearable_assets.roster import Participant
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator, setting_guid


def token(sim: CentrePointSimulator, scope: str = "CentrePoint Analytics", secret: str | None = None) -> requests.Response:
    return requests.post(sim.token_url, timeout=10, data={
        "grant_type": "client_credentials", "client_id": sim.client_id,
        "client_secret": sim.client_secret if secret is None else secret, "scope": scope})


def get(sim: CentrePointSimulator, path: str, access_token: str, **params: object) -> requests.Response:
    return requests.get(f"{sim.url}{path}", params=params, timeout=10,
                        headers={"Authorization": f"Bearer {access_token}"})


def test_token_endpoint(sim: CentrePointSimulator) -> None:
    ok = token(sim)
    assert ok.status_code == 200
    assert ok.json()["expires_in"] == 3600 and ok.json()["token_type"] == "Bearer"
    wrong = token(sim, secret="nope")
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_client"})
    assert token(sim, scope="Everything").json() == {"error": "invalid_scope"}


def test_studies_and_subjects_with_iana_time_zones(sim: CentrePointSimulator) -> None:
    access = token(sim).json()["access_token"]
    studies = get(sim, "/centrepoint/v3/Studies", access, limit=1).json()
    assert studies["totalCount"] == 2 and [s["id"] for s in studies["items"]] == [1001]
    assert studies["links"]["next"].endswith("offset=1&limit=1")
    subjects = get(sim, "/centrepoint/v3/Studies/1001/Subjects", access).json()["items"]
    assert {(s["id"], s["subjectIdentifier"], s["timezone"]) for s in subjects} == {
        (50001, "P001", "America/New_York"), (50002, "P002", "Australia/Brisbane")}
    assert get(sim, "/centrepoint/v3/Studies/1002/Subjects/50005", access).json()["timezone"] == "Asia/Tokyo"
    missing = get(sim, "/centrepoint/v3/Studies/1002/Subjects/50001", access)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")


def test_auth_and_scope_are_enforced(sim: CentrePointSimulator) -> None:
    assert get(sim, "/centrepoint/v3/Studies", "made-up").status_code == 401
    analytics_only = token(sim, scope="Analytics").json()["access_token"]
    refused = get(sim, "/centrepoint/v3/Studies", analytics_only)
    assert refused.status_code == 403 and "CentrePoint scope" in refused.text
    sim.expire_tokens()
    assert get(sim, "/analytics/v3/Studies/1002/Subjects/50005/DailyStatistics", analytics_only).status_code == 401


def test_data_is_deterministic_and_built_from_any_roster() -> None:
    roster = [Participant("X1", "S", "Pacific/Auckland", date(2026, 3, 1), centrepoint_study_id="7",
                          centrepoint_subject_id="701"),
              Participant("X2", "S", "Europe/Berlin", date(2026, 3, 1))]  # no CentrePoint ids
    first = CentrePointSimulator(roster, data_end=date(2026, 3, 10))
    second = CentrePointSimulator(roster, data_end=date(2026, 3, 10))
    assert list(first.subjects) == [701]
    records = first.daily_statistics(701, None, None, None)
    assert records == second.daily_statistics(701, None, None, None)
    assert len(records) == 10 * 2  # the only study's first subject has two settings
    assert {r["dailyStatisticsSettingId"] for r in records} == {setting_guid(7, 0), setting_guid(7, 1)}
    # Auckland is UTC+13 in March: local midnight of 1 March is 28 February in UTC.
    assert records[0]["date"] == "2026-02-28T11:00:00+00:00"
    # The last day is still being uploaded; earlier days are complete.
    assert records[-1]["epochAggregation"]["totalNonFilteredMinutes"] < 1440
    assert records[0]["epochAggregation"]["totalNonFilteredMinutes"] == 1440
