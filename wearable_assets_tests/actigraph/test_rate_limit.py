"""CentrePoint's per-IP limit (a sliding window) holds for a whole ranged run, counted at the simulator.

The simulator's limit and the client's (``WEARABLES_CENTREPOINT_REQUESTS`` per
``WEARABLES_CENTREPOINT_WINDOW_S``) are shrunk to the same small budget, with a window of two
seconds so the test does not wait for whole minutes; everything else, from the asset through dlt
and the rate-limited adapter to the HTTP request, is the production path. The run fetches
``PARTICIPANTS`` subjects ``FETCH_THREADS`` at a time: unthrottled, its requests go out far faster
than the budget (a test shows the simulator refusing some), throttled, the simulator's
log shows no window over the budget, not one 429, and every participant-day landed with its
rows. The last test runs two steps in two processes on one Dagster instance: the
``centrepoint_api`` pool (one slot) runs them one after the other, so the machine's traffic is
one process's, within the budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
import pytest
import requests

from wearable_assets import settings
from wearable_assets.actigraph.assets import FETCH_THREADS, daily_statistics, daily_statistics_parquet
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.orchestration.pools import CENTREPOINT_POOL, apply_pool_limits
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import Participant
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator
from wearable_assets_dev.simulators.common import most_in_any_window
from wearable_assets_tests.concurrency import Outcome, errors, run_rounds
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import partition_metadata

from .conftest import DATA_END

LIMIT = 10  # requests per window, at the simulator and at the client
WINDOW_S = 2.0
PARTICIPANTS = 24  # a token request and a page each: 48 requests, several windows' worth
DAYS = (date(2026, 11, 2),)
ZONES = ("Europe/London", "America/Chicago", "Australia/Brisbane")
ROUNDS = 3
PARQUET = "actigraph/daily_statistics_parquet"


def roster() -> list[Participant]:
    """``PARTICIPANTS`` CentrePoint subjects of one study, in three time zones."""
    return [Participant(f"C{n:03d}", "LIMITS-01", ZONES[n % len(ZONES)], date(2026, 1, 1),
                        centrepoint_study_id="1001", centrepoint_subject_id=str(60000 + n))
            for n in range(1, PARTICIPANTS + 1)]


@pytest.fixture
def limited_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[CentrePointSimulator]:
    """The simulator with the small budget, and the client configured for the same one."""
    with CentrePointSimulator(roster(), data_end=DATA_END, rate_limit=LIMIT, rate_window_s=WINDOW_S) as sim:
        for legacy in ("CENTERPOINT_USERNAME", "CENTERPOINT_PASSWORD"):
            monkeypatch.delenv(legacy, raising=False)
        monkeypatch.setenv(settings.CENTREPOINT_BASE_URL_ENV, sim.url)
        monkeypatch.setenv(settings.CENTREPOINT_TOKEN_URL_ENV, sim.token_url)
        monkeypatch.setenv(settings.CENTREPOINT_CLIENT_ID_ENV, sim.client_id)
        monkeypatch.setenv(settings.CENTREPOINT_CLIENT_SECRET_ENV, sim.client_secret)
        monkeypatch.setenv(settings.CENTREPOINT_REQUESTS_ENV, str(LIMIT))
        monkeypatch.setenv(settings.CENTREPOINT_WINDOW_ENV, str(WINDOW_S))
        yield sim


@pytest.fixture
def enrolled(timescale: TimescaleResource, instance: dg.DagsterInstance) -> TimescaleResource:
    people = roster()
    upsert_participants(timescale, people)
    add_participants(instance, *(p.participant_id for p in people))
    return timescale


def run_tags(first: str = "C001", last: str = f"C{PARTICIPANTS:03d}") -> dict[str, str]:
    return {"dagster/asset_partition_range_start": f"{DAYS[0]}|{first}",
            "dagster/asset_partition_range_end": f"{DAYS[-1]}|{last}"}


def materialize(instance: dg.DagsterInstance, lake: LakeResource, timescale: TimescaleResource,
                tags: dict[str, str]) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [daily_statistics_parquet, daily_statistics], instance=instance, tags=tags,
        resources={"centrepoint": CentrePointResource(request_backoff_factor=0.05), "lake": lake,
                   "timescale": timescale})


def rows_per_day(timescale: TimescaleResource) -> dict[str, int]:
    return {f"{day}|{pid}": n for pid, day, n in timescale.fetch(
        "SELECT participant_id, local_date, count(*) FROM wearables.actigraph_daily_statistics GROUP BY 1, 2")}


def expected_rows(sim: CentrePointSimulator, participants: list[Participant]) -> dict[str, int]:
    """One row per daily-statistics setting of the subject, for every day of the run."""
    return {f"{day}|{p.participant_id}": len(sim.settings_for(int(p.centrepoint_subject_id or 0)))
            for p in participants for day in DAYS}


def assert_within_the_limit(sim: CentrePointSimulator) -> None:
    """At the simulator: every request let through, none over the budget in any window."""
    refused = sim.limiter.hits(status=429)
    assert refused == [], f"{len(refused)} requests were refused (429)"
    accepted = [h.at for h in sim.limiter.hits(status=200)]
    assert most_in_any_window(accepted, WINDOW_S) <= LIMIT


def test_the_simulator_counts_a_sliding_window(limited_sim: CentrePointSimulator) -> None:
    """Half the budget, half a window later the other half: a window after the first half, only
    that half's slots are free again (a fixed window would have freed them all)."""
    token = requests.post(limited_sim.token_url, data={
        "grant_type": "client_credentials", "client_id": limited_sim.client_id,
        "client_secret": limited_sim.client_secret, "scope": "CentrePoint"}, timeout=10).json()["access_token"]
    url, headers = f"{limited_sim.url}/centrepoint/v3/Studies", {"Authorization": f"Bearer {token}"}

    def send(n: int) -> list[requests.Response]:
        return [requests.get(url, headers=headers, timeout=10) for _ in range(n)]

    started = time.monotonic()
    assert {r.status_code for r in send(LIMIT // 2)} == {200}
    time.sleep(WINDOW_S * 0.6 - (time.monotonic() - started))
    assert {r.status_code for r in send(LIMIT - LIMIT // 2)} == {200}
    refused = send(1)[0]
    assert refused.status_code == 429 and refused.headers["content-type"].startswith("text/plain")
    assert int(refused.headers["Retry-After"]) in (1, 2)  # until the first half leaves the window
    time.sleep(max(0.0, started + WINDOW_S * 1.25 - time.monotonic()))
    later = send(LIMIT // 2 + 1)  # the first half's slots are free, the second half's are not
    assert [r.status_code for r in later] == [200] * (LIMIT // 2) + [429]
    assert [h.status for h in limited_sim.limiter.hits()] == [200] * LIMIT + [429] + [200] * (LIMIT // 2) + [429]


def test_without_the_client_limiter_the_run_goes_over_the_limit(
    limited_sim: CentrePointSimulator, enrolled: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run is big enough to matter: with a client budget far above the server's, the
    simulator has to refuse requests (dlt's 429 handling is the backstop that still lands them)."""
    assert PARTICIPANTS > LIMIT and FETCH_THREADS > 1
    monkeypatch.setenv(settings.CENTREPOINT_REQUESTS_ENV, "100000")
    result = materialize(instance, lake, enrolled, run_tags())
    assert result.success
    assert limited_sim.limiter.hits(status=429), "the unthrottled run stayed within the limit: the test proves nothing"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_ranged_run_stays_within_the_per_ip_limit(
    round_: int, limited_sim: CentrePointSimulator, enrolled: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    result = materialize(instance, lake, enrolled, run_tags())

    assert result.success
    assert_within_the_limit(limited_sim)
    assert len(limited_sim.limiter.hits()) >= PARTICIPANTS > LIMIT  # one page per participant at least
    statuses = {k: m["status"] for k, m in partition_metadata(result, PARQUET).items()}
    assert statuses == {f"{d}|{p.participant_id}": "ok" for p in roster() for d in DAYS}
    assert rows_per_day(enrolled) == expected_rows(limited_sim, roster())


def _fetch_half(ref: Any, worker: int, round_: int) -> dict[str, Any]:
    """One step in its own process, on the shared instance: half the participants."""
    half = PARTICIPANTS // 2
    first, last = (1, half) if worker == 0 else (half + 1, PARTICIPANTS)
    with dg.DagsterInstance.from_ref(ref) as instance:
        result = materialize(instance, LakeResource(url=settings.lake_url()),
                             TimescaleResource(dsn=settings.timescale_dsn()),
                             run_tags(f"C{first:03d}", f"C{last:03d}"))
        statuses = {k: m["status"] for k, m in partition_metadata(result, PARQUET).items()}
    return {"success": result.success, "statuses": statuses}


def test_two_steps_in_two_processes_share_the_limit_through_the_pool(
    limited_sim: CentrePointSimulator, enrolled: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    """Each process's limiter knows only its own requests; the pool's single slot is what keeps
    two of them from spending the budget twice over at the same time."""
    apply_pool_limits(instance, {CENTREPOINT_POOL: 1}, overwrite=True)
    ref = instance.get_ref()

    def before(round_: int) -> None:
        limited_sim.limiter.reset()

    def check(round_: int, outcomes: list[Outcome]) -> None:
        assert errors(outcomes) == []
        assert [o.value["success"] for o in outcomes] == [True, True]
        statuses = outcomes[0].value["statuses"] | outcomes[1].value["statuses"]
        assert statuses == {f"{d}|{p.participant_id}": "ok" for p in roster() for d in DAYS}
        assert_within_the_limit(limited_sim)
        assert rows_per_day(enrolled) == expected_rows(limited_sim, roster())

    run_rounds(_fetch_half, (ref,), workers=2, rounds=ROUNDS, before=before, check=check)
