"""Google Health v4 simulator over real HTTP: OAuth, pagination, civil days, sync, limits."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from oauthlib.oauth2 import InvalidGrantError
from requests_oauthlib import OAuth2Session

from wearable_assets_dev.simulators.cohort import SyntheticCohort, local_midnight_utc
from wearable_assets_dev.simulators.common import Fault
from wearable_assets_dev.simulators.google_health import READ_SCOPES, GoogleHealthSimulator

REDIRECT = "http://127.0.0.1:9/callback"


def login(sim: GoogleHealthSimulator, user_id: str) -> OAuth2Session:
    """The browser leg of the code flow, done with requests-oauthlib as a real client would."""
    session = OAuth2Session(sim.client_id, redirect_uri=REDIRECT, scope=list(READ_SCOPES), pkce="S256")
    url, state = session.authorization_url(sim.auth_url, access_type="offline", prompt="consent", login_hint=user_id)
    consent = requests.get(url, allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    location = consent.headers["location"]
    assert location.startswith(REDIRECT) and f"state={state}" in location
    session.fetch_token(sim.token_url, authorization_response=location, client_secret=sim.client_secret)
    return session


def fetch_all(session: requests.Session, url: str, params: dict) -> tuple[list[dict], list[int]]:
    points, sizes, token = [], [], None
    while True:
        query = dict(params, **({"pageToken": token} if token else {}))
        reply = session.get(url, params=query, timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        page = body.get("dataPoints", [])
        points += page
        sizes.append(len(page))
        token = body.get("nextPageToken")
        if not token:
            return points, sizes


def civil_filter(member: str, day: date) -> str:
    return f'{member} >= "{day.isoformat()}" AND {member} < "{(day + timedelta(days=1)).isoformat()}"'


def test_code_flow_refresh_and_revocation(google: GoogleHealthSimulator) -> None:
    session = login(google, "NY1")
    token = session.token
    assert token["token_type"] == "Bearer" and token["refresh_token"] and token["expires_in"] > 3000
    assert set(token["scope"]) == set(READ_SCOPES)
    identity = session.get(google.base_url + "/users/me/identity", timeout=10).json()
    assert identity["legacyUserId"] == google.cohort.user("NY1").legacy_user_id

    google.state.expire_access_tokens("NY1")
    expired = session.get(google.base_url + "/users/me/identity", timeout=10)
    assert expired.status_code == 401 and expired.json()["error"]["status"] == "UNAUTHENTICATED"

    refreshed = session.refresh_token(google.token_url, client_id=google.client_id, client_secret=google.client_secret)
    assert refreshed["refresh_token"] == token["refresh_token"]  # Google keeps the refresh token
    assert session.get(google.base_url + "/users/me/identity", timeout=10).status_code == 200
    assert google.state.token_calls == {"authorization_code": 1, "refresh_token": 1}

    google.state.revoke_refresh_tokens("NY1")
    with pytest.raises(InvalidGrantError):
        session.refresh_token(google.token_url, client_id=google.client_id, client_secret=google.client_secret)
    raw = requests.post(google.token_url, data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
                                                "client_id": google.client_id, "client_secret": google.client_secret},
                        timeout=10)
    assert raw.status_code == 400
    assert raw.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def test_bad_client_secret_and_reused_code_are_rejected(google: GoogleHealthSimulator) -> None:
    session = OAuth2Session(google.client_id, redirect_uri=REDIRECT, scope=list(READ_SCOPES))
    url, _ = session.authorization_url(google.auth_url, access_type="offline", login_hint="LA1")
    location = requests.get(url, allow_redirects=False, timeout=10).headers["location"]
    code = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))["code"]
    form = {"grant_type": "authorization_code", "code": requests.utils.unquote(code), "redirect_uri": REDIRECT,
            "client_id": google.client_id}
    bad = requests.post(google.token_url, data=dict(form, client_secret="wrong"), timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    good = requests.post(google.token_url, data=dict(form, client_secret=google.client_secret), timeout=10)
    assert good.status_code == 200 and "refresh_token" in good.json()
    again = requests.post(google.token_url, data=dict(form, client_secret=google.client_secret), timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pagination_returns_every_point_once_across_short_pages(google: GoogleHealthSimulator) -> None:
    session = login(google, "NY1")
    day = date(2026, 11, 10)
    url = google.base_url + "/users/me/dataTypes/heart-rate/dataPoints"
    points, sizes = fetch_all(session, url, {"filter": civil_filter("heart_rate.sample_time.civil_time", day),
                                             "pageSize": 10000})
    truth = google.cohort.day("NY1", day)
    assert len(sizes) > 1 and min(sizes[:-1]) < 10000  # pages shorter than asked, but not the end
    times = [p["heartRate"]["sampleTime"]["physicalTime"] for p in points]
    assert len(times) == len(set(times)) == truth.hr_times.size
    assert times == sorted(times, reverse=True)  # newest first
    assert [int(p["heartRate"]["beatsPerMinute"]) for p in points[::-1]] == truth.hr_bpm.tolist()

    google.state.empty_page_every = 2
    again, sizes = fetch_all(session, url, {"filter": civil_filter("heart_rate.sample_time.civil_time", day),
                                            "pageSize": 4000})
    assert 0 in sizes and again == points


@pytest.mark.parametrize(
    ("user_id", "day", "hours"),
    [("NY1", date(2026, 11, 1), 25), ("NY1", date(2026, 3, 8), 23), ("BNE1", date(2026, 11, 1), 24),
     ("LA1", date(2026, 11, 1), 25)],
)
def test_civil_day_filter_keeps_samples_inside_the_local_day(
    google: GoogleHealthSimulator, user_id: str, day: date, hours: int
) -> None:
    session = login(google, user_id)
    tz = google.cohort.user(user_id).tz
    start, end = local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)
    assert (end - start) == timedelta(hours=hours)
    hr, _ = fetch_all(session, google.base_url + "/users/me/dataTypes/heart-rate/dataPoints",
                      {"filter": civil_filter("heart_rate.sample_time.civil_time", day), "pageSize": 10000})
    steps, _ = fetch_all(session, google.base_url + "/users/me/dataTypes/steps/dataPoints",
                         {"filter": civil_filter("steps.interval.civil_start_time", day), "pageSize": 10000})
    instants = [datetime.fromisoformat(p["heartRate"]["sampleTime"]["physicalTime"].replace("Z", "+00:00")) for p in hr]
    assert instants and all(start <= t < end for t in instants)
    assert min(instants) - start < timedelta(minutes=2) and end - max(instants) < timedelta(minutes=2)
    for p in hr[:50] + hr[-50:]:
        st = p["heartRate"]["sampleTime"]
        local = datetime.fromisoformat(st["physicalTime"].replace("Z", "+00:00")).astimezone(tz)
        assert st["utcOffset"] == f"{int(local.utcoffset().total_seconds())}s"
        assert st["civilTime"]["date"] == {"year": local.year, "month": local.month, "day": local.day}
    minutes = {p["steps"]["interval"]["startTime"] for p in steps}
    assert len(minutes) == int(google.cohort.day(user_id, day).worn.sum())
    assert len(minutes) <= hours * 60


def test_physical_filter_and_filter_errors(google: GoogleHealthSimulator) -> None:
    session = login(google, "BNE1")
    url = google.base_url + "/users/me/dataTypes/steps/dataPoints"
    window = 'steps.interval.start_time >= "2026-11-10T00:00:00Z" AND steps.interval.start_time < "2026-11-10T01:00:00Z"'
    points, _ = fetch_all(session, url, {"filter": window})
    assert 0 < len(points) <= 60
    bad = session.get(url, params={"filter": 'steps-x.interval.start_time >= "2026-11-10T00:00:00Z"'}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["reason"] == "INVALID_DATA_POINT_FILTER"
    wrong = session.get(url, params={"filter": 'steps.sample_time.civil_time >= "2026-11-10"'}, timeout=10)
    assert wrong.json()["error"]["details"][0]["reason"] == "INVALID_DATA_POINT_FILTER_DATA_TYPE_MEMBER"
    civil = session.get(url, params={"filter": 'steps.interval.civil_start_time >= "2026-11-10T00:00:00Z"'}, timeout=10)
    assert civil.json()["error"]["details"][0]["reason"] == "INVALID_DATA_POINT_FILTER_CIVIL_DATE_TIME_FORMAT"


def test_late_sync_makes_a_day_grow(cohort: SyntheticCohort) -> None:
    day = date(2026, 11, 10)
    tz = cohort.user("LA1").tz
    cohort.now = local_midnight_utc(day, tz) + timedelta(hours=14)
    with GoogleHealthSimulator(cohort) as sim:
        session = login(sim, "LA1")
        url = sim.base_url + "/users/me/dataTypes/heart-rate/dataPoints"
        params = {"filter": civil_filter("heart_rate.sample_time.civil_time", day), "pageSize": 10000}
        early, _ = fetch_all(session, url, params)
        cohort.advance(timedelta(hours=12))
        late, _ = fetch_all(session, url, params)
        cut = cohort.now - cohort.user("LA1").sync_lag
        assert 0 < len(early) < len(late) == cohort.day("LA1", day).hr_times.size
        assert {p["heartRate"]["sampleTime"]["physicalTime"] for p in early} < {
            p["heartRate"]["sampleTime"]["physicalTime"] for p in late}
        devices = session.get(sim.base_url + "/users/me/pairedDevices", timeout=10).json()["pairedDevices"]
        assert devices[0]["lastSyncTime"] == cut.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_sync_between_pages_neither_repeats_nor_skips_points(cohort: SyntheticCohort) -> None:
    # Later pages of a query reuse its point set only while the user's sync state is unchanged.
    day = date(2026, 11, 10)
    tz = cohort.user("LA1").tz
    cohort.now = local_midnight_utc(day, tz) + timedelta(hours=14)
    truth = cohort.day("LA1", day).hr_times
    with GoogleHealthSimulator(cohort) as sim:
        session = login(sim, "LA1")
        url = sim.base_url + "/users/me/dataTypes/heart-rate/dataPoints"
        params = {"filter": civil_filter("heart_rate.sample_time.civil_time", day), "pageSize": 1500}
        early = cohort.last_sync("LA1")
        stamps, token, pages = [], None, 0
        while True:
            body = session.get(url, params=dict(params, **({"pageToken": token} if token else {})), timeout=30).json()
            stamps += [p["heartRate"]["sampleTime"]["physicalTime"] for p in body.get("dataPoints", [])]
            token, pages = body.get("nextPageToken"), pages + 1
            if not token:
                break
            cohort.advance(timedelta(hours=1))  # the device syncs more while the client pages
        assert pages > 3
        expected = [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for t in truth[truth < int(early.timestamp())].tolist()][::-1]
        assert stamps == expected  # what had synced when paging began, each point once, newest first
        grown, _ = fetch_all(session, url, params)
        late = cohort.last_sync("LA1").timestamp()
        assert len(grown) == int((truth < late).sum()) > len(stamps)


def test_rate_limit_answers_429_with_retry_after(google: GoogleHealthSimulator) -> None:
    session = login(google, "NY1")
    google.state.set_rate_limit("NY1", 5)
    url = google.base_url + "/users/me/settings"
    assert all(session.get(url, timeout=10).status_code == 200 for _ in range(5))
    limited = session.get(url, timeout=10)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    error = limited.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and error["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
    other = login(google, "LA1")  # the budget is per user
    assert other.get(url, timeout=10).status_code == 200


def test_account_not_linked_scopes_and_injected_faults(google: GoogleHealthSimulator) -> None:
    google.state.set_granted_scopes("LDN1", [READ_SCOPES[0]])  # activity only
    session = login(google, "LDN1")
    base = google.base_url + "/users/me/dataTypes"
    assert session.get(base + "/steps/dataPoints", timeout=10).status_code == 200
    denied = session.get(base + "/heart-rate/dataPoints", timeout=10)
    assert denied.status_code == 403 and denied.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"

    google.state.set_account_not_linked("LDN1")
    unlinked = session.get(base + "/steps/dataPoints", timeout=10)
    assert unlinked.status_code == 400
    assert unlinked.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert unlinked.json()["error"]["details"][0]["reason"] == "ACCOUNT_NOT_LINKED"
    google.state.set_account_not_linked("LDN1", False)

    google.state.inject(Fault("/v4/users/me/dataTypes/steps", "status", status=503))
    assert session.get(base + "/steps/dataPoints", timeout=10).status_code == 503
    google.state.inject(Fault("/v4/users/me/dataTypes/steps", "malformed"))
    with pytest.raises(ValueError):
        session.get(base + "/steps/dataPoints", timeout=10).json()
    assert session.get(base + "/steps/dataPoints", timeout=10).status_code == 200


def test_daily_rollup_and_list_agree_and_payloads_are_deterministic(google: GoogleHealthSimulator) -> None:
    session = login(google, "BNE1")
    day = date(2026, 11, 12)
    body = {"range": {"start": {"date": {"year": 2026, "month": 11, "day": 12}},
                      "end": {"date": {"year": 2026, "month": 11, "day": 13}}}, "windowSizeDays": 1}
    url = google.base_url + "/users/me/dataTypes/steps/dataPoints:dailyRollUp"
    first = session.post(url, json=body, timeout=10).json()
    assert session.post(url, json=body, timeout=10).json() == first
    points, _ = fetch_all(session, google.base_url + "/users/me/dataTypes/steps/dataPoints",
                          {"filter": civil_filter("steps.interval.civil_start_time", day), "pageSize": 10000})
    assert first["rollupDataPoints"][0]["steps"]["countSum"] == str(sum(int(p["steps"]["count"]) for p in points))
    bare = dict(body, range={"start": {"year": 2026, "month": 11, "day": 12}, "end": body["range"]["end"]})
    assert session.post(url, json=bare, timeout=10).status_code == 400

    sleep_url = google.base_url + "/users/me/dataTypes/sleep/dataPoints:reconcile"
    params = {"filter": civil_filter("sleep.interval.civil_end_time", day)}
    one = session.get(sleep_url, params=params, timeout=10).json()
    assert session.get(sleep_url, params=params, timeout=10).json() == one
    (sleep,) = one["dataPoints"]
    assert "dataSource" not in sleep and sleep["dataPointName"].endswith(str(google.cohort.sleep("BNE1", day).log_id))
    assert sleep["sleep"]["interval"]["civilEndTime"]["date"] == {"year": 2026, "month": 11, "day": 12}
    assert sleep["sleep"]["interval"]["civilStartTime"]["date"]["day"] in (11, 12)
    assert {s["type"] for s in sleep["sleep"]["stages"]} <= {"AWAKE", "LIGHT", "DEEP", "REM"}
    no_family = session.get(google.base_url + "/users/me/dataTypes/sleep/dataPoints",
                            params=dict(params, dataSourceFamily="users/me/dataSourceFamilies/all-sources"), timeout=10)
    assert no_family.status_code == 400


@pytest.mark.parametrize("data_type", ["floors", "total-calories"])
def test_floors_and_total_calories_are_read_with_rollups_not_list(google: GoogleHealthSimulator,
                                                                    data_type: str) -> None:
    # As the live service answers: list (and reconcile) are refused, the rollups are not.
    session = login(google, "NY1")
    day = date(2026, 11, 12)
    url = google.base_url + f"/users/me/dataTypes/{data_type}/dataPoints"
    member = data_type.replace("-", "_") + ".interval.civil_start_time"
    for suffix, verb in (("", "List"), (":reconcile", "Reconcile")):
        refused = session.get(url + suffix, params={"filter": civil_filter(member, day)}, timeout=10)
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["message"] == (f"{verb} is not supported for data type {data_type}, but the following actions "
                                    "are supported: rollup, dailyRollup")

    truth = google.cohort.day("NY1", day)
    tz = google.cohort.user("NY1").tz
    start, end = local_midnight_utc(day, tz), local_midnight_utc(day + timedelta(days=1), tz)
    body = {"range": {"startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "endTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "windowSize": "60s", "pageSize": 10000}
    windows = session.post(url + ":rollUp", json=body, timeout=10).json()["rollupDataPoints"]
    assert len(windows) == int(truth.worn.sum())  # one window per worn minute, true zeros included
    if data_type == "floors":
        assert sum(int(w["floors"]["countSum"]) for w in windows) == int(truth.floors[truth.worn].sum())
    daily = session.post(url + ":dailyRollUp", json={
        "range": {"start": {"date": {"year": 2026, "month": 11, "day": 12}},
                  "end": {"date": {"year": 2026, "month": 11, "day": 13}}}, "windowSizeDays": 1}, timeout=10)
    assert daily.status_code == 200 and len(daily.json()["rollupDataPoints"]) == 1


def test_two_fresh_simulators_serve_identical_payloads() -> None:
    from wearable_assets_tests.simulators.conftest import make_cohort

    bodies = []
    for _ in range(2):
        with GoogleHealthSimulator(make_cohort()) as sim:
            session = login(sim, "NY1")
            params = {"filter": civil_filter("heart_rate.sample_time.civil_time", date(2026, 11, 3)), "pageSize": 2000}
            bodies.append(session.get(sim.base_url + "/users/me/dataTypes/heart-rate/dataPoints", params=params,
                                      timeout=30).content)
    assert bodies[0] == bodies[1] and len(bodies[0]) > 100_000


def test_admin_routes_drive_the_clock_and_users_over_http(google: GoogleHealthSimulator) -> None:
    session = login(google, "NY1")
    before = google.cohort.now
    moved = requests.post(google.url + "/_sim/clock", json={"advance_s": 3600}, timeout=10).json()
    assert datetime.fromisoformat(moved["now"]) == before + timedelta(hours=1) == google.cohort.now
    requests.post(google.url + "/_sim/users/NY1", json={"account_not_linked": True}, timeout=10).raise_for_status()
    assert session.get(google.base_url + "/users/me/dataTypes/steps/dataPoints", timeout=10).status_code == 400
    requests.post(google.url + "/_sim/users/NY1", json={"account_not_linked": False, "revoke": True}, timeout=10)
    assert session.get(google.base_url + "/users/me/identity", timeout=10).status_code == 401
