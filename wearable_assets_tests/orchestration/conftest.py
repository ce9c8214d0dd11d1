"""End-to-end fixtures: every provider simulator on 127.0.0.1, the demo roster in the database and
the partitions, and Google Health tokens issued by the simulator (the enrolment flow itself is
tested in the Fitbit domain)."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from wearable_assets import settings
from wearable_assets.fitbit.resources import google_health_resource
from wearable_assets.oauth.crypto import generate_key
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import load_roster
from wearable_assets.settings import TOKEN_KEY_ENV
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.stack import SimulatorStack
from wearable_assets_tests.conftest import add_participants

DEMO_ROSTER = settings.REPO_ROOT / "roster" / "demo_roster.csv"


def synced_day() -> date:
    """A day every demo device has long synced (the simulators' data runs up to now)."""
    return datetime.now(timezone.utc).date() - timedelta(days=3)


@pytest.fixture
def stack(
    timescale: TimescaleResource, lake: LakeResource, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatorStack]:
    """Simulators running, the environment pointing at them (as ``simulators exec`` does), the
    demo roster in ``wearables.participants`` and Google Health tokens stored."""
    roster = load_roster(DEMO_ROSTER)
    upsert_participants(timescale, roster)
    monkeypatch.setenv(TOKEN_KEY_ENV, generate_key())
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(DEMO_ROSTER))
    with SimulatorStack(roster) as sims:
        for name, value in sims.env().items():
            monkeypatch.setenv(name, value)
        store = google_health_resource().process_config_and_initialize().token_store(timescale)
        for p in roster:
            if p.fitbit_provider == "google_health":
                store.save(p.participant_id, "google_health", sims.google.state.issue_tokens(p.participant_id))
        yield sims


@pytest.fixture
def demo_instance(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    add_participants(instance, *(p.participant_id for p in load_roster(DEMO_ROSTER)))
    return instance
