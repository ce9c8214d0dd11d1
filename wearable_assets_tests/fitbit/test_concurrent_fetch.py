"""``fitbit/raw_payloads`` fetches several participants at once, and Google's per-user limit holds.

A ranged run of three Google Health participants x two days, against the simulator with a
network latency (so the threads really overlap their requests) and with its own per-user budget
enforced (HTTP 429 past it), which also notes which user each request counted against. As in
test_rate_limit.py, the budget is shrunk and its window cut
to one second so the test does not wait for whole minutes: the process-wide limiter registered
for the test's budget is the production class with a 1 s window; everything else, from the asset
through the resource to the HTTP request, is the production path. At the simulator, every
user's requests are counted in every window (none over the budget, not one 429), and the users'
request spans overlap: the participants were fetched side by side, not one after another.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from wearable_assets import rate_limits
from wearable_assets.fitbit import google_health
from wearable_assets.fitbit.assets import FETCH_THREADS, raw_payloads
from wearable_assets.oauth.store import TokenStore
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.common import Latency, most_in_any_window
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import partition_metadata

from .conftest import DAY, CountingLimits, enrol_directly, google_resource
from .test_assets import resources

BUDGET = 8  # requests per window per participant: a participant-day needs two windows or more
WINDOW_S = 1.0
#: Extra requests the server allows per window. None: the limiter counts a request from when its
#: answer arrived (``wearable_assets.rate_limits``), so however the machine schedules the sends,
#: no more than the budget reach the server in any window.
SERVER_SLACK = 0
GOOGLE = ["P001", "P002", "P004"]  # P003 (legacy, enrolment ended) is in the range and skipped
ROUNDS = 3


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_participants_are_fetched_side_by_side_within_each_users_limit(
    round_: int, google_sim: GoogleHealthSimulator, google_store: TokenStore, token_key: str,
    db: TimescaleResource, lake: LakeResource, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(GOOGLE) <= FETCH_THREADS  # all three users are fetched at once
    limiter = rate_limits.SlidingWindowLimiter(BUDGET, window_s=WINDOW_S)
    monkeypatch.setitem(rate_limits._LIMITERS, (google_health.PROVIDER, BUDGET, 60.0, None), limiter)
    google = google_resource(google_sim, token_key, requests_per_minute=BUDGET)
    counted = google_sim.state.rate_limits = CountingLimits(BUDGET + SERVER_SLACK, window_s=WINDOW_S)
    google_sim.state.latency = Latency(0.02)
    enrol_directly(google_sim, google_store, *GOOGLE)
    add_participants(instance, "P001", "P002", "P003", "P004")
    google_sim.state.reset_calls()

    result = dg.materialize([raw_payloads], resources=resources(google, db, lake), instance=instance, tags={
        "dagster/asset_partition_range_start": f"{DAY}|P001",
        "dagster/asset_partition_range_end": f"{DAY + timedelta(days=1)}|P004"})

    assert result.success
    statuses = {k: m["status"] for k, m in partition_metadata(result, ["fitbit", "raw_payloads"]).items()}
    assert statuses == {f"{d}|{p}": "skipped" if p == "P003" else "ok"
                        for d in (DAY, DAY + timedelta(days=1)) for p in ("P001", "P002", "P003", "P004")}
    api = [c for c in google_sim.state.calls if c.path.startswith("/v4/")]
    assert [c for c in api if c.status == 429] == [], "a user went over the per-user limit"
    calls = sum(m["api_calls"] for m in partition_metadata(result, ["fitbit", "raw_payloads"]).values())
    assert calls == len(api) > 6 * BUDGET
    # Per user, at the simulator: never more than the budget (and the slack) in any window.
    assert sorted(counted.hits) == GOOGLE
    assert {user: most_in_any_window(times, WINDOW_S) <= BUDGET + SERVER_SLACK for user, times in counted.hits.items()} == \
        dict.fromkeys(GOOGLE, True), {user: most_in_any_window(times, WINDOW_S) for user, times in counted.hits.items()}
    # Side by side: every user's requests began before any other user's ended.
    spans = [(min(times), max(times)) for times in counted.hits.values()]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans
    # ... so all of them together went over one user's budget within a window.
    assert most_in_any_window([t for times in counted.hits.values() for t in times], WINDOW_S) > BUDGET + SERVER_SLACK
