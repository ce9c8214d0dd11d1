"""Every simulator waits its ``state.latency`` before answering an API request (admin routes
excepted), so the throughput benchmark can put a remote API's latency in front of the pipeline."""

from __future__ import annotations

import statistics
import time

import pytest
import requests

from wearable_assets import settings
from wearable_assets.roster import load_roster
from wearable_assets_dev.simulators.common import Latency
from wearable_assets_dev.simulators.stack import SimulatorStack

MEAN_S = 0.3
ROUNDS = 5


def elapsed(url: str) -> float:
    started = time.perf_counter()
    requests.get(url, timeout=10)
    return time.perf_counter() - started


def test_every_simulator_answers_after_its_latency() -> None:
    with SimulatorStack(load_roster(settings.REPO_ROOT / "roster" / "demo_roster.csv")) as stack:
        for sim in (stack.google, stack.fitbit, stack.centrepoint):
            base = sim.url.rstrip("/")
            # Any API path will do (an unknown one is answered 404 or, legacy, 410): it is routed
            # like the others, after the middleware.
            quick = [elapsed(f"{base}/no/such/path") for _ in range(ROUNDS)]
            sim.state.latency = Latency(MEAN_S, jitter=0.5)
            slow = [elapsed(f"{base}/no/such/path") for _ in range(ROUNDS)]
            admin = [elapsed(f"{base}/_sim/calls") for _ in range(ROUNDS)]
            sim.state.latency = Latency()
            # Each wait is at least MEAN_S x (1 - jitter); the medians of the others are far below
            # it even on a loaded machine.
            assert min(slow) >= MEAN_S / 2 and max(slow) < MEAN_S * 1.5 + 1.0, (sim, slow)
            assert statistics.median(quick) < MEAN_S / 3 and statistics.median(admin) < MEAN_S / 3, (sim, quick, admin)


def test_latency_rejects_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="latency"):
        Latency(-0.1)
    with pytest.raises(ValueError, match="jitter"):
        Latency(0.1, jitter=1.5)
    draws = [Latency(0.1, jitter=0.5).draw() for _ in range(200)]
    assert min(draws) >= 0.05 and max(draws) <= 0.15 and len(set(draws)) > 100
    assert Latency().draw() == 0.0
