"""The read API over HTTP against real TimescaleDB data loaded by the project's assets."""

from __future__ import annotations

import ipaddress
import math
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from time import monotonic, sleep
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from wearable_assets.fitbit.metrics import METRICS
from wearable_assets.serving.config import ServingConfig
from wearable_assets.serving.routing import DAILY_TABLE, HOURLY_TABLE, RAW_TABLE
from wearable_assets_tests.serving.conftest import LoadedData
from wearable_assets_tests.serving.servers import RunningApi, api_in_thread, api_process, free_port

UTC = timezone.utc


def get(api: RunningApi, path: str, **params: Any) -> tuple[int, Any]:
    response = requests.get(f"{api.url}{path}", params=params, timeout=30)
    return response.status_code, response.json()


def query(data: LoadedData, statement: str, *params: Any) -> list[tuple]:
    with psycopg.connect(data.dsn) as conn:
        return conn.execute(statement, params).fetchall()


def participant_tz(data: LoadedData, participant_id: str) -> ZoneInfo:
    (tz,), = query(data, "SELECT time_zone FROM wearables.participants WHERE participant_id = %s", participant_id)
    return ZoneInfo(tz)


def local_day_window(data: LoadedData, participant_id: str, first: date, days: int = 1) -> tuple[datetime, datetime]:
    tz = participant_tz(data, participant_id)
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(first + timedelta(days=days), time(), tzinfo=tz).astimezone(UTC)
    return start, end


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def fetch_all(api: RunningApi, limit: int, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page of a window: (all points, all page envelopes)."""
    points: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        status, body = get(api, "/data", limit=limit, offset=offset, **params)
        assert status == 200, body
        pages.append(body)
        points.extend(body["points"])
        offset = body["next_offset"]
        assert len(pages) < 200, "pagination does not end"
    return points, pages


# --- routing --------------------------------------------------------------------------------------

def test_auto_routing_picks_the_table_by_span(api: RunningApi, serving_data: LoadedData) -> None:
    pid, day = serving_data.participants[0], serving_data.days[0]
    start, _ = local_day_window(serving_data, pid, day)
    cases = [
        (timedelta(hours=6), "raw", RAW_TABLE),
        (timedelta(days=1), "raw", RAW_TABLE),
        (timedelta(days=3), "1h", HOURLY_TABLE),
        (timedelta(days=90), "1d", DAILY_TABLE),
    ]
    for span, resolution, table in cases:
        status, body = get(api, "/data", participant_id=pid, metric="heart_rate", start=iso(start),
                           end=iso(start + span))
        assert status == 200, body
        assert (body["resolution_requested"], body["resolution"], body["source_table"]) == ("auto", resolution, table)
        assert body["total_count"] > 0, f"no {resolution} points for {pid} from {start}"
        assert body["time_zone"] == str(participant_tz(serving_data, pid))


def test_raw_points_are_exactly_the_stored_samples_in_the_window(api: RunningApi, serving_data: LoadedData) -> None:
    pid, day = serving_data.participants[0], serving_data.days[1]
    start, end = local_day_window(serving_data, pid, day)
    points, pages = fetch_all(api, limit=2500, participant_id=pid, metric="heart_rate", start=iso(start),
                              end=iso(end), resolution="raw")
    expected = query(serving_data, "SELECT ts, value FROM wearables.fitbit_intraday WHERE participant_id = %s "
                     "AND metric = 'heart_rate' AND ts >= %s AND ts < %s ORDER BY ts", pid, start, end)
    assert len(expected) > 5000, "a full day of heart rate should be thousands of samples"
    assert len(pages) == math.ceil(len(expected) / 2500)
    assert {page["total_count"] for page in pages} == {len(expected)}
    # every stored row exactly once, in time order, with its value, across all pages
    assert [(parse(p["ts"]), p["value"]) for p in points] == expected
    assert pages[-1]["next_offset"] is None
    assert all(p["ts"].endswith("Z") for p in points)


def test_hourly_points_match_the_rollup_and_page_without_gaps(api: RunningApi, serving_data: LoadedData) -> None:
    pid = serving_data.participants[0]
    start, end = local_day_window(serving_data, pid, serving_data.days[0], days=len(serving_data.days))
    points, pages = fetch_all(api, limit=7, participant_id=pid, metric="heart_rate", start=iso(start),
                              end=iso(end), resolution="1h")
    buckets = query(serving_data, "SELECT bucket, sum(sum_value) / sum(n_samples), sum(n_samples) FROM wearables.intraday_hourly "
                    "WHERE participant_id = %s AND metric = 'heart_rate' AND bucket >= %s AND bucket < %s "
                    "GROUP BY bucket ORDER BY bucket", pid, start, end)
    assert len(buckets) >= 24 * (len(serving_data.days) - 1), "hourly rollup is missing most of the days"
    assert {page["total_count"] for page in pages} == {len(buckets)}
    assert [(parse(p["ts"]), p["value"], p["count"]) for p in points] == buckets
    assert {page["source_table"] for page in pages} == {HOURLY_TABLE}


@pytest.mark.parametrize("metric", ["heart_rate", "steps"])
def test_rollup_buckets_agree_with_buckets_computed_from_raw(
    api: RunningApi, serving_data: LoadedData, metric: str
) -> None:
    """The same question answered from the rollups and from raw samples: same answer."""
    pid = serving_data.participants[0]
    start, end = local_day_window(serving_data, pid, serving_data.days[0], days=len(serving_data.days))
    for resolution in ("1h", "1d"):
        params = dict(participant_id=pid, metric=metric, start=iso(start), end=iso(end), resolution=resolution,
                      limit=5000)
        status, rolled = get(api, "/data", **params)
        assert status == 200, rolled
        status, from_raw = get(api, "/data", from_raw="true", **params)
        assert status == 200, from_raw
        assert from_raw["source_table"] == RAW_TABLE and rolled["source_table"] != RAW_TABLE
        assert rolled["total_count"] > 0
        assert [p["ts"] for p in rolled["points"]] == [p["ts"] for p in from_raw["points"]]
        for a, b in zip(rolled["points"], from_raw["points"], strict=True):
            assert a["value"] == pytest.approx(b["value"], rel=1e-9), (resolution, a, b)
            assert (a["min"], a["max"]) == (b["min"], b["max"]) or a["min"] is None  # the summary has no min/max for some
            if resolution == "1h":
                assert a["count"] == b["count"]  # the daily summary keeps no sample counts
        if resolution == "1d":
            assert [p["local_date"] for p in rolled["points"]] == [d.isoformat() for d in serving_data.days]
            expected_valid = dict(query(serving_data, "SELECT local_date, valid_day FROM "
                                        "wearables.participant_day_summary WHERE participant_id = %s", pid))
            assert [p["valid_day"] for p in rolled["points"]] == [
                expected_valid.get(date.fromisoformat(p["local_date"])) for p in rolled["points"]
            ]
        if METRICS[metric].aggregation == "sum":  # counters: the daily total is the sum of the samples
            (total,), = query(serving_data, "SELECT sum(value) FROM wearables.fitbit_intraday WHERE "
                              "participant_id = %s AND metric = %s AND ts >= %s AND ts < %s", pid, metric, start, end)
            assert sum(p["value"] for p in rolled["points"]) == pytest.approx(total)


def test_daily_points_name_each_device_state(api: RunningApi, serving_data: LoadedData) -> None:
    """The participant-day summary's per-device states and quarantine count reach the daily points."""
    pid = serving_data.participants[0]
    start, end = local_day_window(serving_data, pid, serving_data.days[0], days=len(serving_data.days))
    status, body = get(api, "/data", participant_id=pid, metric="steps", start=iso(start), end=iso(end),
                       resolution="1d")
    assert status == 200, body
    expected = {d: (reason, fitbit, actigraph, quarantined) for d, reason, fitbit, actigraph, quarantined in query(
        serving_data, "SELECT local_date, completeness_reason, fitbit_status, actigraph_status, quarantined_values "
        "FROM wearables.participant_day_summary WHERE participant_id = %s", pid)}
    got = {date.fromisoformat(p["local_date"]): (p["completeness_reason"], p["fitbit_status"], p["actigraph_status"],
                                                 p["quarantined_values"]) for p in body["points"]}
    assert got == expected and len(got) == len(serving_data.days)
    # The Fitbit days were loaded from the simulator: nothing failed or was quarantined.
    assert {(fitbit, quarantined) for _, fitbit, _, quarantined in got.values()} == {("ok", 0)}
    assert all(actigraph in ("ok", "not_rostered", "not_ingested", "not_synced_yet", "no_data")
               for _, _, actigraph, _ in got.values())


def test_offset_past_the_end_is_an_empty_last_page(api: RunningApi, serving_data: LoadedData) -> None:
    pid = serving_data.participants[0]
    start, end = local_day_window(serving_data, pid, serving_data.days[0])
    status, first = get(api, "/data", participant_id=pid, metric="steps", start=iso(start), end=iso(end), limit=10)
    assert status == 200 and first["total_count"] > 10 and first["next_offset"] == 10
    status, past = get(api, "/data", participant_id=pid, metric="steps", start=iso(start), end=iso(end),
                       offset=first["total_count"] + 5)
    assert status == 200
    assert (past["points"], past["total_count"], past["next_offset"]) == ([], first["total_count"], None)


def test_a_window_without_data_is_empty_not_an_error(api: RunningApi, serving_data: LoadedData) -> None:
    pid = serving_data.participants[0]
    status, body = get(api, "/data", participant_id=pid, metric="heart_rate", start="2001-01-01", end="2001-01-02")
    assert status == 200
    assert (body["total_count"], body["points"], body["next_offset"]) == (0, [], None)


# --- participants and metrics ---------------------------------------------------------------------

def test_participants_overview_reports_sync_auth_and_valid_days(api: RunningApi, serving_data: LoadedData) -> None:
    as_of = serving_data.days[-1] + timedelta(days=1)
    status, body = get(api, "/participants", as_of=as_of.isoformat())
    assert status == 200
    by_id = {p["participant_id"]: p for p in body}
    roster = query(serving_data, "SELECT participant_id FROM wearables.participants WHERE in_roster ORDER BY 1")
    assert sorted(by_id) == [r[0] for r in roster]
    for pid in serving_data.participants:
        row = by_id[pid]
        (last_sync,), = query(serving_data, "SELECT max(last_device_sync) FROM wearables.ingest_status "
                              "WHERE participant_id = %s", pid)
        assert (parse(row["last_device_sync"]) if row["last_device_sync"] else None) == last_sync
        tokens = dict(query(serving_data, "SELECT provider, auth_state FROM wearables.oauth_tokens "
                            "WHERE participant_id = %s", pid))
        assert row["auth_state"] == tokens.get(row["fitbit_provider"], "not_connected")
        (valid,), = query(serving_data, "SELECT count(*) FROM wearables.participant_day_summary WHERE "
                          "participant_id = %s AND valid_day AND local_date >= %s AND local_date < %s",
                          pid, as_of - timedelta(days=7), as_of)
        assert row["valid_days_last_7"] == valid
        assert row["as_of"] == as_of.isoformat()
    assert by_id[serving_data.participants[0]]["last_data_date"] == serving_data.days[-1].isoformat()


def test_metrics_lists_the_vocabulary(api: RunningApi) -> None:
    status, body = get(api, "/metrics")
    assert status == 200
    assert {m["name"]: (m["unit"], m["aggregation"]) for m in body} == {
        name: (m.unit, m.aggregation) for name, m in METRICS.items()
    }


# --- errors ---------------------------------------------------------------------------------------

BAD_REQUESTS = [
    ({"participant_id": "NOPE", "metric": "heart_rate"}, "unknown participant 'NOPE'"),
    ({"metric": "pulse"}, "unknown metric 'pulse'"),
    ({"start": "2026-11-03", "end": "2026-11-02"}, "must be before end"),
    ({"start": "2026-11-02", "end": "2026-11-02"}, "must be before end"),
    ({"start": "2026-11-01", "end": "2026-11-20", "resolution": "raw"}, "resolution=raw is limited to 7 days"),
    ({"start": "last tuesday"}, "start='last tuesday' is not an ISO 8601"),
    ({"end": "2026-02-30"}, "end='2026-02-30' is not an ISO 8601"),
    ({"start": None}, "start is required"),
    ({"resolution": "5min"}, "resolution: Input should be 'auto', 'raw', '1min', '1h' or '1d'"),
    ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
    ({"limit": "1000000"}, "limit: Input should be less than or equal to 50000"),
    ({"offset": "-1"}, "offset: Input should be greater than or equal to 0"),
    ({"offset": "ten"}, "offset: Input should be a valid integer"),
    ({"participant_id": None}, "participant_id: Field required"),
    ({"participant_id": "P001'; DROP TABLE wearables.participants; --"}, "unknown participant"),
    ({"participant_id": "P001\x00"}, "'participant_id': its value contains the control character U+0000"),
    ({"metric": "heart\x01rate"}, "'metric': its value contains the control character U+0001"),
    ({"participant_id": "P" * 65}, "participant_id: String should have at most 64 characters"),
    ({"start": "x" * 10_000}, "'start': its value is 10000 characters long, at most 256"),
    ({"offset": str(2**63)}, "offset: Input should be less than or equal to 2147483647"),
    ({"offset": str(2**31)}, "offset: Input should be less than or equal to 2147483647"),
    ({"limit": "1e309"}, "limit: Input should be a valid integer"),
    ({"start": "0001-01-01", "end": "2026-11-02"}, "start='0001-01-01' is outside the years 1970-2200"),
]


@pytest.mark.parametrize(("change", "message"), BAD_REQUESTS, ids=[m for _, m in BAD_REQUESTS])
def test_bad_input_is_a_400_with_a_message(
    api: RunningApi, serving_data: LoadedData, change: dict[str, Any], message: str
) -> None:
    params: dict[str, Any] = {"participant_id": serving_data.participants[0], "metric": "heart_rate",
                              "start": "2026-11-01", "end": "2026-11-02"}
    params.update(change)
    status, body = get(api, "/data", **{k: v for k, v in params.items() if v is not None})
    assert status == 400, body
    assert message in body["detail"]
    assert "Traceback" not in body["detail"]


def test_database_down_is_a_503_for_every_endpoint() -> None:
    config = ServingConfig(dsn=f"postgresql://wearables@127.0.0.1:{free_port()}/wearables")
    with api_in_thread(config) as running:
        for path in ("/data?participant_id=P001&metric=heart_rate&start=2026-11-01&end=2026-11-02",
                     "/participants", "/health"):
            response = requests.get(running.url + path, timeout=30)
            assert response.status_code == 503, (path, response.text)
            assert response.json() == {"detail": "the database is not reachable; try again later"}
            assert response.headers["retry-after"] == "5"
        # validation that needs no database still answers 400, not 503
        status, body = get(running, "/data", participant_id="P001", metric="nope", start="x", end="y")
        assert status == 400 and "unknown metric" in body["detail"]


@pytest.mark.parametrize(("as_of", "message"), [
    ("2026-13-01", "as_of='2026-13-01' is not a date in the form YYYY-MM-DD"),
    ("0", "as_of='0' is not a date"),  # a pydantic date would take it as a Unix timestamp
    ("1700000000", "as_of='1700000000' is not a date"),
    ("0001-01-01", "as_of='0001-01-01' is outside the years 1970-2200"),
    ("9999-12-31", "as_of='9999-12-31' is outside the years 1970-2200"),
    ("2026-11-08\x00", "its value contains the control character U+0000"),
])
def test_bad_as_of_is_a_400_with_a_message(api: RunningApi, as_of: str, message: str) -> None:
    status, body = get(api, "/participants", as_of=as_of)
    assert status == 400, body
    assert message in body["detail"]


def test_a_login_that_could_do_more_than_read_is_refused_with_a_503(serving_data: LoadedData) -> None:
    """The pipeline's own login (a superuser here) could write and read tokens: the API refuses
    it instead of serving through it, and says which setting to fix."""
    with api_in_thread(ServingConfig(dsn=serving_data.dsn)) as running:
        status, body = get(running, "/metrics")
        assert status == 200  # needs no database
        for path in ("/participants", "/health"):
            status, body = get(running, path)
            assert status == 503, body
            assert "may do more than read" in body["detail"] and "SUPERUSER" in body["detail"]
            assert "WEARABLES_API_DSN" in body["detail"] and "wearables_api" in body["detail"]


def test_a_login_the_server_refuses_is_a_503_that_says_what_to_do(serving_data: LoadedData) -> None:
    dsn = psycopg.conninfo.make_conninfo(serving_data.dsn, user="no_such_role")
    with api_in_thread(ServingConfig(dsn=dsn)) as running:
        status, body = get(running, "/participants")
        assert status == 503
        assert "refused the API's login" in body["detail"] and "WEARABLES_API_DSN" in body["detail"]
        assert "no_such_role" not in body["detail"]  # the server's own text stays in the server log


# --- security ---------------------------------------------------------------------------------------

def test_the_api_connection_cannot_write(api: RunningApi, serving_data: LoadedData) -> None:
    pool = api.app.state.pool  # type: ignore[attr-defined]
    assert pool.run(lambda conn: conn.execute("SELECT session_user, current_user").fetchone()) == (
        "wearables_api", "wearables_api")
    for statement in ("DELETE FROM wearables.fitbit_intraday",
                      "UPDATE wearables.participants SET study_id = 'x'",
                      "CREATE TABLE wearables.intruder (x int)"):
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            pool.run(lambda conn, s=statement: conn.execute(s))
        # even with the read-only default switched off, the role's grants refuse it
        # and with the read-only default switched off and the role reset (which gave the
        # pipeline's rights back when the API narrowed that login with SET ROLE)
        def forced(conn: psycopg.Connection, s: str = statement) -> None:
            with conn.transaction():
                conn.execute("RESET ROLE")
                conn.execute("SET TRANSACTION READ WRITE")
                conn.execute(s)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pool.run(forced)
    for statement in ("SELECT token_ciphertext FROM wearables.oauth_tokens", "SELECT FROM wearables.oauth_tokens"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pool.run(lambda conn, s=statement: (conn.execute("RESET ROLE"), conn.execute(s)))
    # the pool hands out the same login afterwards
    assert pool.run(lambda conn: conn.execute("SELECT current_user").fetchone()[0]) == "wearables_api"
    (rows,), = query(serving_data, "SELECT count(*) FROM wearables.fitbit_intraday")
    assert rows > 0


def test_cors_allows_only_configured_origins(api: RunningApi) -> None:
    allowed = requests.get(f"{api.url}/metrics", headers={"Origin": "http://allowed.example"}, timeout=10)
    assert allowed.headers.get("access-control-allow-origin") == "http://allowed.example"
    other = requests.get(f"{api.url}/metrics", headers={"Origin": "http://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in other.headers
    preflight = requests.options(f"{api.url}/data", timeout=10, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers


def test_no_cors_headers_without_configured_origins() -> None:
    with api_in_thread(ServingConfig(dsn="postgresql://unused@127.0.0.1:1/x")) as running:
        response = requests.get(f"{running.url}/metrics", headers={"Origin": "http://a.example"}, timeout=10)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_openapi_describes_the_endpoints(api: RunningApi) -> None:
    status, spec = get(api, "/openapi.json")
    assert status == 200
    assert {"/data", "/participants", "/metrics", "/health"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/data"]["get"]["parameters"]}
    assert params == {"participant_id", "metric", "start", "end", "resolution", "from_raw", "limit", "offset"}
    assert requests.get(f"{api.url}/docs", timeout=10).status_code == 200


def test_a_query_over_the_statement_timeout_is_a_503(serving_data: LoadedData) -> None:
    with api_in_thread(ServingConfig(dsn=serving_data.api_dsn, statement_timeout_ms=1)) as running:
        status, body = get(running, "/data", participant_id=serving_data.participants[0], metric="heart_rate",
                           start=serving_data.days[0].isoformat(), end=serving_data.days[-1].isoformat(),
                           resolution="1h", from_raw="true")
        assert status == 503
        assert "took longer than 1 ms" in body["detail"] and "coarser resolution" in body["detail"]


def test_serve_command_binds_loopback_and_serves(serving_data: LoadedData) -> None:
    """The real entry point (`wearable-assets serve` / `python -m wearable_assets.serving`)."""
    with api_process(serving_data.dsn) as (url, port):
        assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok", "database": "ok"}
        assert "text/html" in requests.get(f"{url}/", timeout=5).headers["content-type"]
        assert listening_addresses(port) == ["127.0.0.1"]
        # Without WEARABLES_API_DSN it logs in as its own role, not with the pipeline's DSN it was given.
        assert api_logins(serving_data) == {"wearables_api"}


def api_logins(data: LoadedData) -> set[str]:
    """Users of the API connections to the loaded database right now (a refused login of another
    test may still be closing: wait for it to go)."""
    deadline = monotonic() + 10
    while True:
        users = {r[0] for r in query(data, "SELECT usename FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND application_name = 'wearable_assets.api'")}
        if users <= {"wearables_api"} or monotonic() > deadline:
            return users
        sleep(0.2)


def test_an_unexpected_error_is_a_500_without_a_traceback(api: RunningApi, serving_data: LoadedData) -> None:
    """A bug (here: a participant row with a time zone nobody validated) must not leak internals."""
    with psycopg.connect(serving_data.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO wearables.participants (participant_id, study_id, time_zone, enrolled_from) "
                     "VALUES ('BROKEN', 'X', 'Mars/Olympus_Mons', '2026-01-01')")
    try:
        response = requests.get(f"{api.url}/data", timeout=30, params={
            "participant_id": "BROKEN", "metric": "steps", "start": "2026-11-01", "end": "2026-11-02"})
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error; the server log has the details"}
    finally:
        with psycopg.connect(serving_data.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM wearables.participants WHERE participant_id = 'BROKEN'")


# --- helpers ----------------------------------------------------------------------------------------

def listening_addresses(port: int) -> list[str]:
    """IPv4/IPv6 addresses with a socket listening on ``port`` (from /proc, no tools needed)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(str(ipaddress.ip_address(words)))
    return found
