"""Fixtures for the Fitbit tests: real simulators on 127.0.0.1, the demo roster in the database,
a token key, and resources pointed at the simulators."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timezone

import pytest

from wearable_assets import settings
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.oauth.crypto import generate_key
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import Participant, load_roster
from wearable_assets.settings import TOKEN_KEY_ENV
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.common import PerKeyLimits
from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

#: The simulated "now": every test day below is in the past and fully synced.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
DAY = date(2026, 11, 10)


@pytest.fixture(scope="session")
def roster() -> list[Participant]:
    return load_roster(settings.REPO_ROOT / "roster" / "demo_roster.csv")


@pytest.fixture
def cohort(roster: list[Participant]) -> SyntheticCohort:
    return SyntheticCohort.from_roster(roster, now=NOW)


@pytest.fixture
def google_sim(cohort: SyntheticCohort) -> Iterator[GoogleHealthSimulator]:
    with GoogleHealthSimulator(cohort) as sim:
        yield sim


@pytest.fixture
def token_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = generate_key()
    monkeypatch.setenv(TOKEN_KEY_ENV, key)
    return key


@pytest.fixture
def db(timescale: TimescaleResource, roster: list[Participant]) -> TimescaleResource:
    """The test database with the demo roster in ``wearables.participants``."""
    upsert_participants(timescale, roster)
    return timescale


#: Fast backoff and short timeouts, so retry tests take fractions of a second.
FAST = {"backoff_s": 0.05, "timeout_s": 5.0, "max_wait_s": 10.0}


def google_resource(sim: GoogleHealthSimulator, token_key: str, **overrides: object) -> GoogleHealthResource:
    """A Google Health resource aimed at ``sim``.

    Build variants with this rather than ``model_copy``: Dagster re-creates resources from their
    original config when it runs them, so a copied-and-updated resource loses the update."""
    return GoogleHealthResource(client_id=sim.client_id, client_secret=sim.client_secret, token_key=token_key,
                                auth_url=sim.auth_url, token_url=sim.token_url, base_url=sim.base_url,
                                **(FAST | overrides))  # type: ignore[arg-type]


def legacy_resource(sim: FitbitLegacySimulator, token_key: str, **overrides: object) -> FitbitLegacyResource:
    """A legacy Fitbit resource aimed at ``sim`` (its OAuth endpoints hang off the same base URL)."""
    return FitbitLegacyResource(client_id=sim.client_id, client_secret=sim.client_secret, token_key=token_key,
                                base_url=sim.base_url, **(FAST | overrides))  # type: ignore[arg-type]


@pytest.fixture
def google(google_sim: GoogleHealthSimulator, token_key: str) -> GoogleHealthResource:
    return google_resource(google_sim, token_key)


@pytest.fixture
def google_store(google: GoogleHealthResource, db: TimescaleResource) -> TokenStore:
    return google.token_store(db)


def enrol_directly(sim: GoogleHealthSimulator, store: TokenStore, *participant_ids: str) -> dict[str, dict]:
    """Store simulator-minted tokens, skipping the browser leg (the enrolment test covers that)."""
    tokens = {}
    for pid in participant_ids:
        tokens[pid] = sim.state.issue_tokens(pid)
        store.save(pid, "google_health", tokens[pid])
    return tokens


class CountingLimits(PerKeyLimits):
    """The simulator's per-user budget, noting when each user's request was counted (for tests
    that count requests per window at the simulator)."""

    def __init__(self, limit: int, window_s: float) -> None:
        super().__init__(limit, window_s)
        self.hits: dict[str, list[float]] = {}

    def hit(self, key: str) -> tuple[bool, int, int, int]:
        self.hits.setdefault(key, []).append(time.monotonic())
        return super().hit(key)
