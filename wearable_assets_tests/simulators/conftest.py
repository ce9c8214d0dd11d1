"""Fixtures for the simulator tests: a small cohort with a pinned clock and running servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from wearable_assets_dev.simulators.cohort import SimUser, SyntheticCohort
from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

# requests-oauthlib refuses plain-http token URLs and warns when Google narrows the scope list;
# the simulators run on http://127.0.0.1, so allow both for this test process only.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

#: A fixed "now" well after the test days, so every test day is fully synced unless a test moves it.
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def make_cohort(now: datetime = NOW) -> SyntheticCohort:
    return SyntheticCohort(
        [
            SimUser("NY1", "America/New_York", seed=11),
            SimUser("BNE1", "Australia/Brisbane", seed=22),
            SimUser("LA1", "America/Los_Angeles", seed=33),
            SimUser("LDN1", "Europe/London", seed=44),
        ],
        now=now,
    )


@pytest.fixture
def cohort() -> SyntheticCohort:
    return make_cohort()


@pytest.fixture
def google(cohort: SyntheticCohort) -> Iterator[GoogleHealthSimulator]:
    with GoogleHealthSimulator(cohort) as sim:
        yield sim


@pytest.fixture
def fitbit(cohort: SyntheticCohort) -> Iterator[FitbitLegacySimulator]:
    with FitbitLegacySimulator(cohort, mode="working") as sim:
        yield sim
