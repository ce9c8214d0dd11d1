"""The dlt source against the CentrePoint simulator: paging, tokens, errors, schema drift."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest

from wearable_assets.actigraph import records
from wearable_assets.actigraph.source import (
    CentrePointError,
    MissingCredentials,
    fetch_daily_statistics,
)
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator, setting_guid
from wearable_assets_dev.simulators.common import Fault
from wearable_assets_tests.actigraph.conftest import DATA_END, DEMO_ROSTER

DAILY = "/analytics/v3/Studies/"


def opts(sim: CentrePointSimulator, **extra: object) -> dict[str, object]:
    """Explicit source arguments pointing at ``sim`` (the env-based path has its own tests)."""
    return {
        "centrepoint_base_url": sim.url,
        "centrepoint_token_url": sim.token_url,
        "centrepoint_client_id": sim.client_id,
        "centrepoint_client_secret": sim.client_secret,
        "request_backoff_factor": 0.05,
        **extra,
    }


def daily_calls(sim: CentrePointSimulator) -> list[dict[str, list[str]]]:
    return [parse_qs(c.query) | {"_status": [str(c.status)]} for c in sim.state.calls if c.path.startswith(DAILY)]


def test_250_rows_come_in_3_pages_by_offset_not_links_next(sim: CentrePointSimulator) -> None:
    # P005 (study 1002, subject 50005, one setting): 250 local days.
    start = date(2026, 1, 1)
    fetch = fetch_daily_statistics(1002, 50005, start, start + timedelta(days=249), **opts(sim))
    assert len(fetch.records) == 250
    assert fetch.stats.pages == 3 and fetch.stats.api_calls == 3
    calls = daily_calls(sim)
    assert [c["offset"] for c in calls] == [["0"], ["100"], ["200"]]
    # Every page kept the date filter: the simulator's links.next drops it, so following that
    # link would have returned the subject's whole history (324 days).
    assert all(c["fromDate"] == ["2026-01-01"] and c["toDate"] == ["2026-09-07"] for c in calls)
    assert all(c["limit"] == ["100"] for c in calls)


def test_optional_blocks_absent_for_a_minimal_study(sim: CentrePointSimulator) -> None:
    tokyo = fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 3), **opts(sim)).records
    ny = fetch_daily_statistics(1001, 50002, date(2026, 11, 1), date(2026, 11, 3), **opts(sim)).records
    assert tokyo and ny
    for record in tokyo:
        assert "epochAggregation" in record
        assert not {"crouterAggregations", "mavmAggregation", "hildebrandMetCalorieAggregation"} & record.keys()
    assert all("crouterAggregations" in r and "mavmAggregation" in r for r in ny)
    rows = [records.to_row(r, "P005", ZoneInfo("Asia/Tokyo"), datetime.now()) for r in tokyo]
    assert all(r["mvpa_minutes"] is None and r["steps"] is None and r["mets"] is None for r in rows)
    assert all(r["cutpoint_algorithm"] is None and r["wear_minutes"] is not None for r in rows)


def test_two_setting_ids_for_one_subject(sim: CentrePointSimulator) -> None:
    fetch = fetch_daily_statistics(1001, 50001, date(2026, 11, 2), date(2026, 11, 4), **opts(sim))
    guids = {r["dailyStatisticsSettingId"] for r in fetch.records}
    assert guids == {setting_guid(1001, 0), setting_guid(1001, 1)}
    by_day = records.rows_by_day(fetch.records, "P001", ZoneInfo("America/New_York"), datetime.now())
    for rows in by_day.values():
        assert len(rows) == 2
        assert {r["cutpoint_algorithm"] for r in rows} == {"crouter", "freedson"}
        assert len({r["setting_id"] for r in rows}) == 2
    # One setting on request.
    only = fetch_daily_statistics(1001, 50001, date(2026, 11, 2), date(2026, 11, 4),
                                  **opts(sim, daily_statistics_setting_id=setting_guid(1001, 1)))
    assert {r["dailyStatisticsSettingId"] for r in only.records} == {setting_guid(1001, 1)}
    assert len(only.records) == len(fetch.records) // 2


def test_token_renewed_before_expiry_during_a_slow_run() -> None:
    # Tokens live 2 s; the client renews 1 s early. Two slow pages stretch the run past that.
    with CentrePointSimulator(DEMO_ROSTER, data_end=DATA_END, token_expires_in=2) as sim:
        sim.state.inject(Fault(path=DAILY, kind="timeout", delay_s=1.2, count=2))
        fetch = fetch_daily_statistics(1002, 50005, date(2026, 1, 1), date(2026, 3, 31),
                                       **opts(sim, page_limit=40, token_refresh_margin_s=1))
        assert len(fetch.records) == 90
        assert fetch.stats.pages == 3
        assert fetch.stats.token_requests >= 2 and sim.tokens_issued == fetch.stats.token_requests
        assert 401 not in fetch.stats.statuses  # renewed in time, never rejected


def test_a_401_gets_a_new_token_once(sim: CentrePointSimulator) -> None:
    sim.state.inject(Fault(path=DAILY, kind="expired_token", count=1))
    fetch = fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5), **opts(sim))
    assert len(fetch.records) == 5
    assert fetch.stats.statuses[401] == 1 and sim.tokens_issued == 2

    sim.state.inject(Fault(path=DAILY, kind="expired_token", count=2))  # the new token fails too
    with pytest.raises(CentrePointError, match="HTTP 401") as err:
        fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5), **opts(sim))
    assert err.value.response.status_code == 401
    assert sim.tokens_issued == 4  # one token for the run plus exactly one renewal


def test_token_expired_by_the_server_mid_run_is_replaced(sim: CentrePointSimulator) -> None:
    """The server forgets every token between pages (a revoked or clock-skewed token)."""
    original = sim.daily_statistics

    def forget_after_first_page(*args: object) -> list[dict[str, object]]:
        if sum(1 for c in sim.state.calls if c.path.startswith(DAILY)) == 1:
            sim.expire_tokens()
        return original(*args)  # type: ignore[arg-type]

    sim.daily_statistics = forget_after_first_page  # type: ignore[method-assign]
    fetch = fetch_daily_statistics(1002, 50005, date(2026, 1, 1), date(2026, 3, 31), **opts(sim, page_limit=40))
    assert len(fetch.records) == 90
    assert fetch.stats.statuses.get(401) == 1 and fetch.stats.token_requests == 2


def test_429_retry_after_is_honoured() -> None:
    with CentrePointSimulator(DEMO_ROSTER, data_end=DATA_END, rate_limit=2, rate_window_s=1.0) as sim:
        started = time.monotonic()
        fetch = fetch_daily_statistics(1002, 50005, date(2026, 1, 1), date(2026, 2, 19),
                                       **opts(sim, page_limit=10))
        elapsed = time.monotonic() - started
        assert len(fetch.records) == 50 and fetch.stats.pages == 5
        assert fetch.stats.statuses.get(429, 0) >= 1
        # Each 429 said "Retry-After: 1"; the client waited instead of using its 0.05 s back-off.
        assert elapsed >= 1.0


def test_5xx_is_retried_then_surfaces_with_its_body(sim: CentrePointSimulator) -> None:
    sim.state.inject(Fault(path=DAILY, status=503, count=2))
    fetch = fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5), **opts(sim))
    assert len(fetch.records) == 5 and fetch.stats.statuses[503] == 2

    sim.state.inject(Fault(path=DAILY, status=502, count=5, body="upstream gateway timed out"))
    with pytest.raises(CentrePointError, match="HTTP 502: upstream gateway timed out"):
        fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5),
                               **opts(sim, request_max_attempts=3))
    assert sum(1 for c in daily_calls(sim) if c["_status"] == ["502"]) == 3


def test_400_plain_text_body_is_quoted_verbatim(sim: CentrePointSimulator) -> None:
    with pytest.raises(CentrePointError) as err:
        fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5),
                               **opts(sim, daily_statistics_setting_id="not-a-guid"))
    assert "HTTP 400: The value 'not-a-guid' is not valid for dailyStatisticsSettingId." in str(err.value)
    assert sum(1 for c in daily_calls(sim)) == 1  # a 400 is not retried


def test_an_error_body_echoing_our_secret_is_redacted(sim: CentrePointSimulator) -> None:
    sim.state.inject(Fault(path=DAILY, status=400, body=f"bad request from client secret {sim.client_secret}"))
    with pytest.raises(CentrePointError) as err:
        fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5), **opts(sim))
    assert str(err.value).endswith("HTTP 400: bad request from client secret [redacted]")


def test_404_means_no_data_not_failure(sim: CentrePointSimulator) -> None:
    fetch = fetch_daily_statistics(1002, 59999, date(2026, 11, 1), date(2026, 11, 5), **opts(sim))
    assert fetch.records == [] and fetch.stats.not_found and fetch.stats.pages == 0


def test_wrong_secret_fails_with_invalid_client_and_no_secret_in_message(sim: CentrePointSimulator) -> None:
    with pytest.raises(CentrePointError) as err:
        fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 5),
                               **opts(sim, centrepoint_client_secret="wrong-secret-123"))
    assert "token endpoint answered HTTP 400" in str(err.value) and "invalid_client" in str(err.value)
    assert "wrong-secret-123" not in str(err.value)
    assert not daily_calls(sim)


def test_new_fields_pass_through_into_the_record() -> None:
    extra = {"skinTemperatureAggregation": {"meanCelsius": 33.1}}
    with CentrePointSimulator(DEMO_ROSTER, data_end=DATA_END, extra_fields=extra) as sim:
        fetch = fetch_daily_statistics(1002, 50005, date(2026, 11, 1), date(2026, 11, 2), **opts(sim))
    row = records.to_row(fetch.records[0], "P005", ZoneInfo("Asia/Tokyo"), datetime.now())
    assert row["record"]["skinTemperatureAggregation"] == {"meanCelsius": 33.1}
    assert records.as_arrow([row]).column("record")[0].as_py().count("skinTemperatureAggregation") == 1


def test_settings_from_the_environment_and_legacy_aliases(
    sim: CentrePointSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CENTREPOINT_CLIENT_ID", "CENTREPOINT_CLIENT_SECRET", "SOURCES__CENTREPOINT__CENTREPOINT_CLIENT_ID",
                 "SOURCES__CENTREPOINT__CENTREPOINT_CLIENT_SECRET", "CENTERPOINT_USERNAME", "CENTERPOINT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CENTREPOINT_BASE_URL", sim.url)
    monkeypatch.setenv("CENTREPOINT_TOKEN_URL", sim.token_url)
    days = (date(2026, 11, 1), date(2026, 11, 2))
    with pytest.raises(MissingCredentials, match="CENTREPOINT_CLIENT_ID"):
        fetch_daily_statistics(1002, 50005, *days)

    monkeypatch.setenv("CENTERPOINT_USERNAME", sim.client_id)  # the older pipeline's names
    monkeypatch.setenv("CENTERPOINT_PASSWORD", sim.client_secret)
    assert len(fetch_daily_statistics(1002, 50005, *days).records) == 2

    monkeypatch.setenv("CENTREPOINT_CLIENT_SECRET", "wins-over-the-alias")
    with pytest.raises(CentrePointError, match="invalid_client"):
        fetch_daily_statistics(1002, 50005, *days)
