"""Fixtures of the compliance tests: the seeded cohort and the read API on it (as ``wearables_api``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from wearable_assets.serving.config import ServingConfig, api_dsn
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.compliance import cohort
from wearable_assets_tests.serving.servers import RunningApi, api_in_thread


@pytest.fixture
def seeded(timescale: TimescaleResource) -> dict[str, Any]:
    return cohort.seed(timescale)


@pytest.fixture
def compliance_api(timescale: TimescaleResource, seeded: dict[str, Any]) -> Iterator[RunningApi]:
    with api_in_thread(ServingConfig(dsn=api_dsn(timescale.dsn))) as running:
        yield running
