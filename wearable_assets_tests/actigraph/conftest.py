"""Fixtures of the ActiGraph tests: the CentrePoint simulator, its credentials in the
environment, the demo participants in the database, and the Athena target (a moto server on
127.0.0.1 standing in for S3 + Athena, or a real account when configured). Every server is
stopped when its test ends."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import boto3
import dagster as dg
import pytest
import requests
from moto.server import ThreadedMotoServer

from wearable_assets import settings
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import load_roster
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator
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


@dataclass
class AthenaTarget:
    """Where the Athena tests write: moto on 127.0.0.1 (default) or a real AWS account."""

    lake_url: str  # s3://bucket/prefix
    results_url: str
    dataset: str
    region: str
    endpoint: str | None  # moto's URL; None means AWS itself

    @property
    def is_moto(self) -> bool:
        return self.endpoint is not None

    @property
    def bucket(self) -> str:
        return self.lake_url.removeprefix("s3://").split("/", 1)[0]

    def key_prefix(self, *parts: str) -> str:
        prefix = self.lake_url.removeprefix("s3://").partition("/")[2].strip("/")
        return "/".join(p for p in (prefix, *parts) if p) + "/"

    def lake(self, table_format: str) -> LakeResource:
        return LakeResource(
            url=self.lake_url, dataset=self.dataset, destination="athena", table_format=table_format,  # type: ignore[arg-type]
            athena_query_result_bucket=self.results_url, aws_region=self.region, aws_endpoint_url=self.endpoint,
        )

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)

    def keys(self, prefix: str) -> list[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def statements(self) -> list[str]:
        """Every statement Athena received that names this dataset, oldest first."""
        athena = self.client("athena")
        ids = [i for page in athena.get_paginator("list_query_executions").paginate() for i in page["QueryExecutionIds"]]
        runs = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
        runs = [r for r in runs if self.dataset in r["Query"]]
        runs.sort(key=lambda r: r["Status"]["SubmissionDateTime"])
        return [" ".join(r["Query"].split()) for r in runs]

    def query(self, sql: str) -> list[list[str]]:
        """Run ``sql`` on Athena and return its rows (real AWS only: moto runs nothing)."""
        athena = self.client("athena")
        run_id = athena.start_query_execution(
            QueryString=sql, ResultConfiguration={"OutputLocation": self.results_url})["QueryExecutionId"]
        while (state := athena.get_query_execution(QueryExecutionId=run_id)["QueryExecution"]["Status"])[
                "State"] in ("QUEUED", "RUNNING"):
            time.sleep(1)
        assert state["State"] == "SUCCEEDED", state
        rows = athena.get_query_results(QueryExecutionId=run_id)["ResultSet"]["Rows"][1:]
        return [[c.get("VarCharValue") for c in row["Data"]] for row in rows]

    def cleanup(self) -> None:
        s3 = self.client("s3")
        for key in self.keys(self.key_prefix()):
            s3.delete_object(Bucket=self.bucket, Key=key)
        if not self.is_moto:
            for name in (self.dataset, f"{self.dataset}_staging"):
                self.query(f"DROP DATABASE IF EXISTS `{name}` CASCADE")


@pytest.fixture
def athena(monkeypatch: pytest.MonkeyPatch) -> Iterator[AthenaTarget]:
    """moto (S3 + Athena on 127.0.0.1, dummy keys) unless WEARABLES_TEST_ATHENA_LAKE_URL names a
    real bucket; then the same tests run on AWS (docs/actigraph.md, "Athena")."""
    real_lake = os.environ.get("WEARABLES_TEST_ATHENA_LAKE_URL")
    if real_lake:
        target = AthenaTarget(
            lake_url=f"{real_lake.rstrip('/')}/run-{uuid.uuid4().hex[:8]}",
            results_url=os.environ["WEARABLES_TEST_ATHENA_RESULTS"],
            dataset=f"wearables_test_{uuid.uuid4().hex[:8]}",
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint=None,
        )
        try:
            yield target
        finally:
            target.cleanup()
        return
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
        yield AthenaTarget("s3://lake/wh", "s3://athena-results/", "wearables", "us-east-1", url)
    finally:
        server.stop()
