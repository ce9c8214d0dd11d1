"""Fixtures of the rollup tests: the test participants in ``wearables.participants``."""

import pytest

from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.rollups.sources import PARTICIPANTS, Sources


@pytest.fixture
def sources(timescale: TimescaleResource) -> Sources:
    s = Sources(timescale)
    s.participants(*PARTICIPANTS)
    return s
