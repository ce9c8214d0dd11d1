"""``wearable_assets.rate_limits`` against a server that counts in a sliding window.

The CentrePoint simulator (the per-IP limit, counted when a request reaches its route) with a
network latency that varies a lot from request to request: requests reach it in another order
and spacing than they left the client. A limiter that counts a request from when it let it go
lets the server see more than the budget in a window (the second test shows it); the project's
limiter counts a request from when its answer arrived, so the server never does, whatever the
delays. The budget is five requests per second so the rounds stay short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import requests

from wearable_assets import settings
from wearable_assets.actigraph.source import RateLimitedAdapter
from wearable_assets.rate_limits import SlidingWindowLimiter, WaitTooLong, slots
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator
from wearable_assets_dev.simulators.common import Latency, most_in_any_window

LIMIT = 5
WINDOW_S = 1.0
THREADS = 4
PER_THREAD = 8  # 32 requests: six windows or more
ROUNDS = 3


@pytest.fixture
def sim() -> Iterator[CentrePointSimulator]:
    with CentrePointSimulator(settings.REPO_ROOT / "roster" / "demo_roster.csv", rate_limit=LIMIT,
                              rate_window_s=WINDOW_S) as server:
        server.state.latency = Latency(0.15, jitter=1.0)  # 0 to 300 ms before the route counts it
        yield server


def token(sim: CentrePointSimulator) -> str:
    return str(requests.post(sim.token_url, data={
        "grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret,
        "scope": "CentrePoint"}, timeout=10).json()["access_token"])


def send_from_threads(sim: CentrePointSimulator, session_for: Callable[[], requests.Session],
                      hold: Callable[[], AbstractContextManager[object]] | None = None) -> list[int]:
    """``THREADS`` threads each send ``PER_THREAD`` requests; returns the statuses."""
    url, headers = f"{sim.url}/centrepoint/v3/Studies", {"Authorization": f"Bearer {token(sim)}"}
    statuses: list[int] = []

    def work() -> None:
        session = session_for()
        for _ in range(PER_THREAD):
            if hold is None:
                statuses.append(session.get(url, headers=headers, timeout=10).status_code)
            else:
                with hold():
                    statuses.append(session.get(url, headers=headers, timeout=10).status_code)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return statuses


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_delayed_requests_never_exceed_the_budget_at_the_server(round_: int, sim: CentrePointSimulator) -> None:
    limiter = SlidingWindowLimiter(LIMIT, WINDOW_S)

    def session() -> requests.Session:  # one per thread, one limiter for all, as in source.py
        http = requests.Session()
        http.mount("http://", RateLimitedAdapter(limiter))
        return http

    statuses = send_from_threads(sim, session)

    assert statuses == [200] * THREADS * PER_THREAD
    assert sim.limiter.hits(status=429) == []
    counted = [h.at for h in sim.limiter.hits(status=200)]
    assert len(counted) == THREADS * PER_THREAD
    assert most_in_any_window(counted, WINDOW_S) == LIMIT  # the budget was used, never exceeded


def test_counting_from_the_send_is_not_enough(sim: CentrePointSimulator) -> None:
    """The same traffic, each request stamped when the limiter lets it go (``acquire``): the
    delays bunch some of them up at the server, which refuses them."""
    limiter = SlidingWindowLimiter(LIMIT, WINDOW_S)

    class StampedAtSend(AbstractContextManager[object]):
        def __enter__(self) -> object:
            return limiter.acquire("ip")

        def __exit__(self, *exc: object) -> None:
            return None

    statuses = send_from_threads(sim, requests.Session, hold=StampedAtSend)
    assert 429 in statuses and sim.limiter.hits(status=429)


def test_a_request_takes_every_budget_it_needs_or_waits() -> None:
    """A participant's budget and the project's: a request waits while either is spent, and
    while it waits for one it holds no slot of the other."""
    user, project = SlidingWindowLimiter(1, 0.5), SlidingWindowLimiter(2, 0.5)
    started = time.monotonic()
    project.acquire("project")
    project.acquire("project")  # the project's budget is spent for half a second
    granted: list[float] = []

    def both() -> None:
        with slots([(user, "P001"), (project, "project")]):
            granted.append(time.monotonic() - started)

    waiting = threading.Thread(target=both)
    waiting.start()
    time.sleep(0.1)
    assert user.acquire("P001") == 0.0  # the waiting request took none of P001's budget
    waiting.join(timeout=10)
    # The project's budget freed at 0.5 s, P001's (spent at 0.1 s) only at 0.6 s.
    assert granted and granted[0] >= 0.6 - 0.01, granted

    spent = SlidingWindowLimiter(1, 60.0, max_wait_s=1.0)
    spent.acquire("P001")
    with pytest.raises(WaitTooLong, match="budget of 1 calls per minute"):
        spent.acquire("P001")
