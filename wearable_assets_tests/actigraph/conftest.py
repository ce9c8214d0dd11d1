"""Fixtures of the ActiGraph tests: the CentrePoint simulator, its credentials in the
environment, the demo participants in the database, and a moto server standing in for S3 +
Athena. Every server is stopped when its test ends."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import boto3
import dagster as dg
import pytest
import requests
from moto.server import ThreadedMotoServer

from wearable_assets import settings
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import load_roster
from wearable_assets.simulators.centrepoint import CentrePointSimulator
from wearable_assets.storage.timescale import TimescaleResource
from wearable_assets_tests.conftest import add_participants

#: Last day the simulator has data for; tests use days before it.
DATA_END = date(2026, 11, 20)
DEMO_ROSTER = settings.REPO_ROOT / "roster" / "demo_roster.csv"


@pytest.fixture
def sim() -> Iterator[CentrePointSimulator]:
    with CentrePointSimulator(DEMO_ROSTER, data_end=DATA_END) as server:
        yield server


@pytest.fixture
def centrepoint_env(sim: CentrePointSimulator, monkeypatch: pytest.MonkeyPatch) -> CentrePointSimulator:
    """The simulator's address and credentials where a deployment would put them."""
    for legacy in ("CENTERPOINT_USERNAME", "CENTERPOINT_PASSWORD"):
        monkeypatch.delenv(legacy, raising=False)
    monkeypatch.setenv("CENTREPOINT_BASE_URL", sim.url)
    monkeypatch.setenv("CENTREPOINT_TOKEN_URL", sim.token_url)
    monkeypatch.setenv("CENTREPOINT_CLIENT_ID", sim.client_id)
    monkeypatch.setenv("CENTREPOINT_CLIENT_SECRET", sim.client_secret)
    return sim


@pytest.fixture
def centrepoint(centrepoint_env: CentrePointSimulator) -> CentrePointResource:
    """The resource as the definitions build it, with short retry back-off for tests."""
    return CentrePointResource(request_backoff_factor=0.05)


@pytest.fixture
def enrolled(timescale: TimescaleResource, instance: dg.DagsterInstance) -> TimescaleResource:
    """The demo roster in wearables.participants and in the Dagster partitions."""
    roster = load_roster(DEMO_ROSTER)
    upsert_participants(timescale, roster)
    add_participants(instance, *(p.participant_id for p in roster))
    return timescale


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """S3 + Athena (moto) on 127.0.0.1 with buckets ``lake`` and ``athena-results``; dummy keys."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        # moto keeps its backends per process, not per server: start every test empty.
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        s3.create_bucket(Bucket="athena-results")
        yield url
    finally:
        server.stop()
