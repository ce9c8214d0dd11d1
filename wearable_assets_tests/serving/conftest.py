"""Fixtures for the read API: a database filled by the project's own assets, and the API on it.

The data is loaded once per session into a database of its own (``wearables_serving_<pid>``),
not the shared test database, because other domains' tests truncate that one between tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest

from wearable_assets.serving.config import ServingConfig, api_dsn
from wearable_assets.storage.local_server import temporary_database
from wearable_assets_tests.serving import loading
from wearable_assets_tests.serving.servers import RunningApi, api_in_thread


@dataclass(frozen=True)
class LoadedData:
    dsn: str  # owner DSN (the pipeline's), for the tests' own checking queries
    participants: tuple[str, ...]
    days: tuple[date, ...]

    @property
    def api_dsn(self) -> str:
        """The same database as the API logs in to it: as ``wearables_api``, no password."""
        return api_dsn(self.dsn)


@pytest.fixture(scope="session")
def serving_data(timescale_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedData]:
    """Fitbit data for two participants over two days, loaded by the Fitbit assets from the
    Google Health simulator, then rolled up by the rollup assets."""
    with temporary_database(timescale_dsn, f"wearables_serving_{os.getpid()}") as dsn:
        loading.load(dsn, tmp_path_factory.mktemp("serving_lake"))
        yield LoadedData(dsn=dsn, participants=loading.PARTICIPANTS, days=loading.DAYS)


@pytest.fixture(scope="session")
def api(serving_data: LoadedData) -> Iterator[RunningApi]:
    """The API on 127.0.0.1 (random port) reading the loaded data as its own login role."""
    config = ServingConfig(dsn=serving_data.api_dsn, cors_origins=("http://allowed.example",))
    with api_in_thread(config) as running:
        yield running
