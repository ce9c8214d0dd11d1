"""The per-participant client-side rate limiter, through the resource, against the Google Health
simulator.

The resource configures the budget (``requests_per_minute``); the limiter it hands out is the
process-wide one of ``rate_limits.shared_limiter`` for that budget, whose window is one minute. So that
the test does not wait for whole minutes, the registry entry for the test's budget is a limiter
of the same class with a 1 s window (real clock, real sleeps): everything else, from the
resource to the HTTP request, is the production path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import requests

from wearable_assets import rate_limits
from wearable_assets.fitbit import google_health, http
from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.google_health.helpers import GoogleHealthClient
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

from .conftest import DAY, enrol_directly, google_resource

BUDGET = 5  # calls per window per participant: far below what one participant-day needs
WINDOW_S = 1.0
#: Scheduling slack between the limiter granting a call and the request being sent.
SLACK_S = 0.02


class Limited:
    """The resource under test and the limiter it hands out, with the limiter's pauses noted."""

    def __init__(self, resource: GoogleHealthResource) -> None:
        self.resource = resource
        self.pauses: list[float] = []
        self.limiter = rate_limits.SlidingWindowLimiter(BUDGET, window_s=WINDOW_S, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def limited(google_sim: GoogleHealthSimulator, token_key: str, monkeypatch: pytest.MonkeyPatch) -> Limited:
    out = Limited(google_resource(google_sim, token_key, requests_per_minute=BUDGET))
    monkeypatch.setitem(rate_limits._LIMITERS, (google_health.PROVIDER, BUDGET, 60.0, None), out.limiter)
    return out


def record_sends(session: http.ApiSession, log: list[float]) -> None:
    """Note the time each HTTP request leaves ``session`` (after the limiter let it go)."""
    original: Callable[..., requests.Response] = session.http.request

    def request(*args: object, **kwargs: object) -> requests.Response:
        log.append(time.monotonic())
        return original(*args, **kwargs)

    session.http.request = request  # type: ignore[method-assign]


def assert_within_budget(sends: list[float]) -> None:
    """No ``BUDGET + 1`` calls inside one window: call i+BUDGET leaves a full window after call i."""
    for i in range(len(sends) - BUDGET):
        assert sends[i + BUDGET] - sends[i] >= WINDOW_S - SLACK_S, (i, sends[i + BUDGET] - sends[i])


def devices(client: GoogleHealthClient, n: int) -> None:
    """``n`` cheap calls (the simulator answers pairedDevices in milliseconds)."""
    for _ in range(n):
        client.call("GET", "users/me/pairedDevices", what="devices")


def test_limiter_holds_calls_once_the_budget_is_spent(limited: Limited, google_sim: GoogleHealthSimulator,
                                                      google_store: TokenStore, db: TimescaleResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    client = limited.resource.client("P001", db)
    assert client.session.limiter is limited.limiter  # the budget configured on the resource picked it
    sends: list[float] = []
    record_sends(client.session, sends)

    devices(client, 3 * BUDGET)

    assert len(sends) == client.session.calls == 3 * BUDGET
    # The first BUDGET calls go out at once; the next ones are held until the window moves on.
    assert sends[BUDGET - 1] - sends[0] < WINDOW_S / 2
    assert_within_budget(sends)
    assert sends[-1] - sends[0] >= 2 * WINDOW_S - SLACK_S
    # The limiter itself held call BUDGET+1 back for the rest of the window (the burst took < W/2).
    assert limited.pauses and limited.pauses[0] > WINDOW_S / 2
    # The simulator saw the same spacing and never had to refuse a call.
    seen = [c for c in google_sim.state.calls if c.path == "/v4/users/me/pairedDevices"]
    assert len(seen) == 3 * BUDGET and {c.status for c in seen} == {200}
    assert seen[BUDGET].at - seen[0].at >= WINDOW_S - 0.1  # (logged when answered)


def test_a_whole_participant_day_stays_within_the_budget(limited: Limited, google_sim: GoogleHealthSimulator,
                                                         google_store: TokenStore, db: TimescaleResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    client = limited.resource.client("P001", db)
    sends: list[float] = []
    record_sends(client.session, sends)
    landed: list[str] = []
    result = client.fetch_day(DayWindow.of(DAY, "America/New_York"), lambda name, body: landed.append(name) or "memory")
    assert result.api_calls == len(sends) == google_sim.state.count_calls("/v4/") > 3 * BUDGET
    assert landed == result.payloads and "pairedDevices" in landed
    assert {c.status for c in google_sim.state.calls} == {200}
    assert_within_budget(sends)  # pagination and every data type count against the one budget


def test_participants_do_not_share_a_budget(
    limited: Limited, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
) -> None:
    resource, limiter = limited.resource, limited.limiter
    enrol_directly(google_sim, google_store, "P001", "P002")
    p001, p002 = resource.client("P001", db), resource.client("P002", db)
    p001_later = resource.client("P001", db)  # another participant-day of P001 in the same process
    assert p001.session.limiter is p002.session.limiter is p001_later.session.limiter is limiter
    sends: dict[str, list[float]] = {"P001": [], "P002": [], "P001_later": []}
    record_sends(p001.session, sends["P001"])
    record_sends(p002.session, sends["P002"])
    record_sends(p001_later.session, sends["P001_later"])

    devices(p001, BUDGET)  # P001's budget for this window is spent
    spent_at = sends["P001"][0]

    # P001 (another client) and P002 call at the same moment: only P001 has to wait.
    threads = [threading.Thread(target=devices, args=(p001_later, 2)),
               threading.Thread(target=devices, args=(p002, BUDGET))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)

    assert len(sends["P002"]) == BUDGET and len(sends["P001_later"]) == 2
    # P002's whole budget went out while P001 was still blocked by its spent one.
    assert sends["P002"][-1] < spent_at + WINDOW_S - SLACK_S
    assert sends["P001_later"][0] >= spent_at + WINDOW_S - SLACK_S
    assert_within_budget(sorted(sends["P001"] + sends["P001_later"]))
    assert google_sim.state.count_calls("/v4/users/me/pairedDevices") == 2 * BUDGET + 2
    assert {c.status for c in google_sim.state.calls} == {200}
