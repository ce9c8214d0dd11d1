"""Legacy Fitbit Web API simulator over real HTTP: shutdown mode, OAuth, intraday shapes, limits."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from wearable_assets_dev.simulators.cohort import SyntheticCohort, local_midnight_utc, to_epoch
from wearable_assets_dev.simulators.common import Fault
from wearable_assets_dev.simulators.fitbit_legacy import SCOPES, FitbitLegacySimulator

REDIRECT = "http://127.0.0.1:9/fitbit-callback"
RATE_HEADERS = ("Fitbit-Rate-Limit-Limit", "Fitbit-Rate-Limit-Remaining", "Fitbit-Rate-Limit-Reset")


def login(sim: FitbitLegacySimulator, user_id: str) -> OAuth2Session:
    session = OAuth2Session(sim.client_id, redirect_uri=REDIRECT, scope=list(SCOPES), pkce="S256")
    url, _state = session.authorization_url(sim.auth_url, login_hint=user_id)
    location = requests.get(url, allow_redirects=False, timeout=10).headers["location"]
    session.fetch_token(sim.token_url, authorization_response=location, client_secret=sim.client_secret)
    return session


def refresh(sim: FitbitLegacySimulator, refresh_token: str) -> requests.Response:
    return requests.post(sim.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(sim.client_id, sim.client_secret), timeout=10)


def test_gone_mode_answers_410_everywhere(cohort: SyntheticCohort) -> None:
    with FitbitLegacySimulator(cohort) as sim:  # "gone" is the default
        assert sim.mode == "gone"
        calls = [
            requests.get(sim.auth_url, params={"client_id": sim.client_id, "response_type": "code"},
                         allow_redirects=False, timeout=10),
            requests.post(sim.token_url, data={"grant_type": "refresh_token", "refresh_token": "x"},
                          auth=(sim.client_id, sim.client_secret), timeout=10),
            requests.post(sim.revoke_url, data={"token": "x"}, timeout=10),
            requests.get(sim.base_url + "/1/user/-/activities/heart/date/2026-11-01/1d/1sec.json",
                         headers={"Authorization": "Bearer whatever"}, timeout=10),
            requests.get(sim.base_url + "/1.2/user/-/sleep/date/2026-11-01.json", timeout=10),
            requests.get(sim.base_url + "/1/user/-/no/such/endpoint.json", timeout=10),
        ]
        assert [r.status_code for r in calls] == [410] * len(calls)
        body = calls[0].json()
        assert body["success"] is False and body["errors"][0]["message"]
        requests.post(sim.url + "/_sim/mode", json={"mode": "working"}, timeout=10).raise_for_status()
        assert requests.get(sim.base_url + "/1/user/-/profile.json", timeout=10).status_code == 401
        sim.set_mode("gone")
        assert requests.get(sim.base_url + "/1/user/-/profile.json", timeout=10).status_code == 410
        assert sim.state.count_calls("/1/user") == 4  # every call is logged, 410s included


def test_refresh_tokens_are_single_use(fitbit: FitbitLegacySimulator) -> None:
    session = login(fitbit, "LDN1")
    first = session.token
    assert first["expires_in"] == 28800 and len(first["refresh_token"]) == 64
    assert first["user_id"] == fitbit.cohort.user("LDN1").legacy_user_id

    rotated = refresh(fitbit, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]

    reused = refresh(fitbit, first["refresh_token"])
    assert reused.status_code == 400
    error = reused.json()["errors"][0]
    assert error["errorType"] == "invalid_grant" and first["refresh_token"] in error["message"]
    with pytest.raises(OAuth2Error):  # a generic OAuth client sees a failed refresh too
        session.refresh_token(fitbit.token_url, refresh_token=first["refresh_token"],
                              auth=(fitbit.client_id, fitbit.client_secret))

    assert refresh(fitbit, second["refresh_token"]).status_code == 200
    assert fitbit.state.token_calls == {"authorization_code": 1, "refresh_token": 4}

    no_basic = requests.post(fitbit.token_url, data={"grant_type": "refresh_token", "refresh_token": "x"}, timeout=10)
    assert no_basic.status_code == 401 and no_basic.json()["errors"][0]["errorType"] == "invalid_request"


def test_refresh_grace_returns_the_same_reply_until_the_new_tokens_are_used(cohort: SyntheticCohort) -> None:
    with FitbitLegacySimulator(cohort, mode="working", refresh_grace_s=30) as sim:
        token = login(sim, "NY1").token["refresh_token"]
        one = refresh(sim, token).json()
        assert refresh(sim, token).json() == one  # a racing worker gets the same pair
        requests.get(sim.base_url + "/1/user/-/profile.json",
                     headers={"Authorization": f"Bearer {one['access_token']}"}, timeout=10)
        assert refresh(sim, token).status_code == 400  # once the new pair is in use, the old one is dead


def test_intraday_shapes_local_times_and_rate_headers(fitbit: FitbitLegacySimulator) -> None:
    session = login(fitbit, "LDN1")
    day = date(2026, 10, 25)  # Europe/London falls back: 25 hours
    truth = fitbit.cohort.day("LDN1", day)
    hr = session.get(fitbit.base_url + f"/1/user/-/activities/heart/date/{day}/1d/1sec.json", timeout=30)
    assert hr.status_code == 200 and all(h in hr.headers for h in RATE_HEADERS)
    body = hr.json()
    intraday = body["activities-heart-intraday"]
    assert intraday["datasetType"] == "second" and intraday["datasetInterval"] == 1
    assert len(intraday["dataset"]) == truth.hr_times.size
    assert all(len(p["time"]) == 8 and isinstance(p["value"], int) for p in intraday["dataset"][:100])
    times = [p["time"] for p in intraday["dataset"]]
    assert len(times) > len(set(times))  # the repeated 01:xx hour, written in local time
    assert body["activities-heart"][0]["value"]["restingHeartRate"] == truth.resting_hr

    utc = session.get(fitbit.base_url + f"/1/user/-/activities/heart/date/{day}/1d/1sec.json",
                      params={"timezone": "UTC"}, timeout=30).json()["activities-heart-intraday"]["dataset"]
    assert len({p["time"] for p in utc}) == len(utc)

    steps = session.get(fitbit.base_url + f"/1/user/-/activities/steps/date/{day}/1d/1min.json", timeout=30).json()
    dataset = steps["activities-steps-intraday"]["dataset"]
    assert len(dataset) == 25 * 60  # dense, zero-filled minutes
    assert steps["activities-steps"][0]["value"] == str(sum(p["value"] for p in dataset)) == str(truth.steps.sum())
    calories = session.get(fitbit.base_url + f"/1/user/-/activities/calories/date/{day}/1d/1min.json",
                           timeout=30).json()["activities-calories-intraday"]["dataset"]
    assert {"level", "mets", "time", "value"} == set(calories[0])

    sleep = session.get(fitbit.base_url + f"/1.2/user/-/sleep/date/{day}.json", timeout=10).json()
    (log,) = sleep["sleep"]
    assert log["dateOfSleep"] == day.isoformat() and log["type"] == "stages" and log["isMainSleep"]
    assert "T" in log["startTime"] and "+" not in log["startTime"] and not log["startTime"].endswith("Z")
    levels = log["levels"]
    assert levels["data"] and {e["level"] for e in levels["data"]} <= {"wake", "light", "deep", "rem"}
    assert all(e["seconds"] % 30 == 0 for e in levels["data"] + levels["shortData"])
    assert sum(e["seconds"] for e in levels["data"]) * 1000 == log["duration"]

    spo2 = session.get(fitbit.base_url + f"/1/user/-/spo2/date/{day}/all.json", timeout=10).json()
    assert spo2["dateTime"] == day.isoformat() and len(spo2["minutes"]) == len(truth.spo2)
    assert isinstance(session.get(fitbit.base_url + f"/1/user/-/spo2/date/{day - timedelta(days=2)}/{day}/all.json",
                                  timeout=10).json(), list)
    hrv = session.get(fitbit.base_url + f"/1/user/-/hrv/date/{day}/all.json", timeout=10).json()
    assert set(hrv["hrv"][0]["minutes"][0]["value"]) == {"rmssd", "coverage", "hf", "lf"}
    br = session.get(fitbit.base_url + f"/1/user/-/br/date/{day}/all.json", timeout=10).json()
    assert br["br"][0]["value"]["fullSleepSummary"]["breathingRate"] > 0
    profile = session.get(fitbit.base_url + "/1/user/-/profile.json", timeout=10).json()["user"]
    assert profile["timezone"] == "Europe/London" and profile["offsetFromUTCMillis"] == 0
    devices = session.get(fitbit.base_url + "/1/user/-/devices.json", timeout=10).json()
    sync = fitbit.cohort.last_sync("LDN1").astimezone(fitbit.cohort.user("LDN1").tz)
    assert devices[0]["lastSyncTime"] == sync.strftime("%Y-%m-%dT%H:%M:%S.000")


def test_late_sync_zero_fills_steps_and_hides_heart_rate(cohort: SyntheticCohort) -> None:
    day = date(2026, 11, 10)
    cohort.now = local_midnight_utc(day, cohort.user("BNE1").tz) + timedelta(hours=13)
    with FitbitLegacySimulator(cohort, mode="working") as sim:
        session = login(sim, "BNE1")
        url = sim.base_url + f"/1/user/-/activities/heart/date/{day}/1d/1sec.json"
        early = session.get(url, timeout=30).json()["activities-heart-intraday"]["dataset"]
        steps_early = session.get(sim.base_url + f"/1/user/-/activities/steps/date/{day}/1d/1min.json",
                                  timeout=30).json()["activities-steps-intraday"]["dataset"]
        cohort.advance(timedelta(days=1))
        late = session.get(url, timeout=30).json()["activities-heart-intraday"]["dataset"]
        assert 0 < len(early) < len(late) == cohort.day("BNE1", day).hr_times.size
        assert len(steps_early) == 24 * 60 and steps_early[-1]["value"] == 0


def test_hourly_budget_runs_out_with_429(fitbit: FitbitLegacySimulator) -> None:
    session = login(fitbit, "NY1")
    fitbit.state.set_rate_limit("NY1", 3)
    url = fitbit.base_url + "/1/user/-/profile.json"
    remaining = [int(session.get(url, timeout=10).headers["Fitbit-Rate-Limit-Remaining"]) for _ in range(3)]
    assert remaining == [2, 1, 0]
    limited = session.get(url, timeout=10)
    assert limited.status_code == 429
    assert limited.json() == {"errors": [{"errorType": "system", "fieldName": "n/a", "message": "Too Many Requests"}],
                              "success": False}
    reset = int(limited.headers["Fitbit-Rate-Limit-Reset"])
    now = datetime.now()
    assert 0 < reset <= 3600 and abs(reset - (3600 - now.minute * 60 - now.second)) <= 2  # top of the hour


def test_token_errors_scopes_and_faults(fitbit: FitbitLegacySimulator) -> None:
    fitbit.state.set_granted_scopes("LA1", ["activity", "profile"])
    session = login(fitbit, "LA1")
    assert session.get(fitbit.base_url + "/1/user/-/profile.json", timeout=10).status_code == 200
    denied = session.get(fitbit.base_url + "/1.2/user/-/sleep/date/2026-11-02.json", timeout=10)
    assert denied.status_code == 403 and denied.json()["errors"][0]["errorType"] == "insufficient_scope"

    fitbit.state.expire_access_tokens("LA1")
    expired = session.get(fitbit.base_url + "/1/user/-/profile.json", timeout=10)
    assert expired.status_code == 401 and expired.json()["errors"][0]["errorType"] == "expired_token"
    assert all(h in expired.headers for h in RATE_HEADERS)
    bogus = requests.get(fitbit.base_url + "/1/user/-/profile.json", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bogus.json()["errors"][0]["errorType"] == "invalid_token"

    session = login(fitbit, "LA1")
    bad_date = session.get(fitbit.base_url + "/1/user/-/activities/steps/date/2026-13-01/1d/1min.json", timeout=10)
    assert bad_date.status_code == 400 and bad_date.json()["errors"][0]["errorType"] == "validation"
    assert all(h in bad_date.headers for h in RATE_HEADERS)

    fitbit.state.inject(Fault("/1/user/-/activities", "status", status=500))
    failed = session.get(fitbit.base_url + "/1/user/-/activities/steps/date/2026-11-02/1d/1min.json", timeout=10)
    assert failed.status_code == 500 and failed.json()["errors"][0]["errorType"] == "request"
    fitbit.state.inject(Fault("/1/user/-/profile", "expired_token"))
    assert session.get(fitbit.base_url + "/1/user/-/profile.json", timeout=10).json()["errors"][0]["errorType"] == \
        "expired_token"
    fitbit.state.revoke("LA1")
    assert session.get(fitbit.base_url + "/1/user/-/profile.json", timeout=10).status_code == 401


def test_sleep_times_keep_the_offset_of_the_sleep_start(fitbit: FitbitLegacySimulator) -> None:
    """New York falls back at 02:00 on 2026-11-01, in the middle of NY1's night."""
    session = login(fitbit, "NY1")
    day = date(2026, 11, 1)
    truth = fitbit.cohort.sleep("NY1", day)
    log = session.get(fitbit.base_url + f"/1.2/user/-/sleep/date/{day}.json", timeout=10).json()["sleep"][0]
    start_local = truth.start.astimezone(fitbit.cohort.user("NY1").tz)
    assert log["startTime"] == start_local.strftime("%Y-%m-%dT%H:%M:%S.000")
    start = datetime.fromisoformat(log["startTime"])
    end = datetime.fromisoformat(log["endTime"])
    assert (end - start).total_seconds() * 1000 == log["duration"]  # no jump at the DST change
    assert to_epoch(truth.end) - to_epoch(truth.start) == log["duration"] // 1000
