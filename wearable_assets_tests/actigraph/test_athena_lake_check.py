"""The lake check on the Athena destination: ``AthenaClientResource`` and ``S3Resource`` from dagster-aws.

On moto (the default) the S3 side is real: the participant-day's objects are listed through
``S3Resource`` and the rows sit in moto's S3 as dlt wrote them. The Athena side is real up to the
query: dagster-aws's client sends the check's SQL to moto, which records it (asserted here, word
for word) but cannot answer: it runs no SQL, and dagster-aws then fails reading the result location
moto never reports (asserted too, so a moto that learns this shows up). The answer Athena would
give is computed by ``DuckDBAnswers``: the recorded SQL, transpiled by sqlglot from Athena's dialect
to DuckDB, over the parquet objects at the table's S3 location. That proves the SQL, the parsing of
Athena's string results and the per-participant-day verdicts; it does not prove that Athena (Trino)
runs the SQL or that the Glue table reads the participant-day folders. With
``WEARABLES_TEST_ATHENA_LAKE_URL`` set the same test runs on real AWS with the plain resources.
"""

import io
import os
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from dagster_aws.athena import AthenaClientResource
from dagster_aws.s3 import S3Resource

from wearable_assets.actigraph.assets import PARQUET_KEY
from wearable_assets.actigraph.ingest import LAKE_TABLE
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.lake_checks import (
    ACTIGRAPH_TABLES,
    CHECK_NAME,
    DuckDBLake,
    compare,
    lake_counts_sql,
    lake_matches_timescale,
)
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_tests.actigraph.conftest import AthenaTarget
from wearable_assets_tests.actigraph.test_assets import ASSETS, DAY
from wearable_assets_tests.partition_events import check_results

P1, P2 = f"{DAY}|P001", f"{DAY}|P002"
RANGE = {"dagster/asset_partition_range_start": P1, "dagster/asset_partition_range_end": P2}
CHECK = lake_matches_timescale(PARQUET_KEY, ACTIGRAPH_TABLES, destination="athena")


class DuckDBAnswers:
    """dagster-aws's ``AthenaClient`` for moto: the query goes to moto for real (recorded there);
    the rows are what Athena would return, computed in DuckDB (module docstring)."""

    def __init__(self, client: Any, endpoint: str, lake_url: str, dataset: str) -> None:
        self.client, self.endpoint, self.lake_url, self.dataset = client, endpoint, lake_url, dataset

    def execute_query(self, query: str, fetch_results: bool = False) -> list[tuple[str, ...]] | None:
        self.client.execute_query(query)  # sent to moto: SUCCEEDED, recorded, no rows
        if not fetch_results:
            return None
        s3 = S3Resource(endpoint_url=self.endpoint, region_name="us-east-1").get_client()
        bucket, _, prefix = self.lake_url.removeprefix("s3://").partition("/")
        with duckdb.connect() as con:
            con.execute("ATTACH ':memory:' AS awsdatacatalog")
            con.execute(f'CREATE SCHEMA awsdatacatalog."{self.dataset}"')
            for table in ACTIGRAPH_TABLES:  # an external table reads every parquet object under its LOCATION
                location = f"{prefix.strip('/')}/{self.dataset}/{table.name}/"
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=location)
                keys = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
                if not keys:
                    return []  # an empty location: Athena returns no rows
                data = pa.concat_tables(
                    [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()), partitioning=None)
                     for k in keys], promote_options="default")
                con.register("staged", data)
                con.execute(f'CREATE TABLE awsdatacatalog."{self.dataset}"."{table.name}" AS SELECT * FROM staged')
                con.unregister("staged")
            rows = con.execute(sqlglot.transpile(query, read="athena", write="duckdb")[0]).fetchall()
        # Athena's result CSV, as dagster-aws returns it: every value a string.
        return [tuple(None if v is None else str(v) for v in row) for row in rows]


class MotoAthenaClientResource(AthenaClientResource):
    endpoint: str
    lake_url: str
    dataset: str

    def get_client(self) -> Any:
        return DuckDBAnswers(super().get_client(), self.endpoint, self.lake_url, self.dataset)


def aws_resources(athena: AthenaTarget) -> dict[str, Any]:
    s3 = S3Resource(region_name=athena.region, endpoint_url=athena.endpoint)
    if athena.is_moto:
        assert athena.endpoint is not None
        return {"s3": s3, "athena": MotoAthenaClientResource(
            polling_interval=0, endpoint=athena.endpoint, lake_url=athena.lake_url, dataset=athena.dataset)}
    workgroup = os.environ.get("WEARABLES_TEST_ATHENA_WORKGROUP", "primary")
    return {"s3": s3, "athena": AthenaClientResource(workgroup=workgroup, polling_interval=1)}


def run_check(instance: dg.DagsterInstance, centrepoint: CentrePointResource, lake: LakeResource,
              timescale: TimescaleResource, athena: AthenaTarget) -> dict[str, dict[str, Any]]:
    result = dg.materialize(ASSETS + [CHECK], selection=dg.AssetSelection.checks(CHECK), instance=instance, tags=RANGE,
                            resources={"centrepoint": centrepoint, "lake": lake, "timescale": timescale,
                                       **aws_resources(athena)})
    assert result.success
    return {str(k): {"passed": e.passed, **{m: v.value for m, v in e.metadata.items()}}
            for k, e in check_results(result, PARQUET_KEY.path, CHECK_NAME).items()}


def object_key(athena: AthenaTarget, key: str) -> str:
    pday = ParticipantDay.from_key(key)
    prefix = athena.key_prefix(athena.dataset, LAKE_TABLE, f"participant_id={pday.participant_id}",
                               f"date={pday.day.isoformat()}")
    (only,) = athena.keys(prefix)
    return only


def test_lake_check_reads_the_athena_lake_per_participant_day(
    enrolled: TimescaleResource, instance: dg.DagsterInstance, centrepoint: CentrePointResource,
    athena: AthenaTarget, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if athena.is_moto:  # AthenaClientResource has no endpoint field: botocore's global override reaches it
        monkeypatch.setenv("AWS_ENDPOINT_URL", str(athena.endpoint))
    s3_lake = athena.lake("hive")
    loaded = dg.materialize(ASSETS, instance=instance, tags=RANGE,
                            resources={"centrepoint": centrepoint, "lake": s3_lake, "timescale": enrolled})
    assert loaded.success
    db = dict(enrolled.fetch("SELECT participant_id, count(*) FROM wearables.actigraph_daily_statistics "
                             "WHERE local_date = %s GROUP BY 1", (DAY,)))
    assert set(db) == {"P001", "P002"} and all(n > 0 for n in db.values())

    results = run_check(instance, centrepoint, s3_lake, enrolled, athena)
    assert set(results) == {P1, P2}
    for key, meta in results.items():
        assert meta["passed"], meta
        assert meta[f"{LAKE_TABLE}/lake_rows"] == meta[f"{LAKE_TABLE}/timescale_rows"] == db[key.split("|")[1]]
        assert meta[f"{LAKE_TABLE}/duplicated_keys"] == 0 and meta[f"{LAKE_TABLE}/lake_files"] == 1

    days = [ParticipantDay(DAY, "P001"), ParticipantDay(DAY, "P002")]
    # The other engine on the same objects: DuckDB reading the S3 files directly agrees.
    files_only = LakeResource(url=athena.lake_url, dataset=athena.dataset, aws_region=athena.region,
                              aws_endpoint_url=athena.endpoint)
    by_duckdb = compare(DuckDBLake(files_only), enrolled, ACTIGRAPH_TABLES, days)
    assert {k: (ok, {m: meta[m] for m in meta if m.startswith(LAKE_TABLE)}) for k, (ok, meta) in by_duckdb.items()} == \
        {k: (True, {m: v for m, v in meta.items() if m.startswith(LAKE_TABLE)}) for k, meta in results.items()}
    source = f'"awsdatacatalog"."{athena.dataset}"."{LAKE_TABLE}"'
    if athena.is_moto:
        # What Athena received: the one SQL of lake_checks, for the whole range, in the workgroup.
        expected = " ".join(lake_counts_sql(source, ACTIGRAPH_TABLES[0], days).split())
        assert athena.statements().count(expected) == 1
        client = athena.client("athena")
        executions = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"]
                      for i in client.list_query_executions()["QueryExecutionIds"]]
        assert [e.get("WorkGroup") for e in executions if " ".join(e["Query"].split()) == expected] == ["primary"]
        # Why the answer comes from DuckDB: moto reports no result location, so dagster-aws cannot read rows.
        with pytest.raises(KeyError, match="ResultConfiguration"):
            AthenaClientResource(polling_interval=0).get_client().execute_query(expected, fetch_results=True)

    # A second copy of P001's object (what a crash between write and cleanup leaves): only P001 fails.
    s3 = athena.client("s3")
    original = object_key(athena, P1)
    copy = original.rsplit("/", 1)[0] + "/0." + original.rsplit("/", 1)[1]
    s3.copy_object(Bucket=athena.bucket, Key=copy, CopySource={"Bucket": athena.bucket, "Key": original})
    results = run_check(instance, centrepoint, s3_lake, enrolled, athena)
    assert results[P2]["passed"]
    bad = results[P1]
    assert not bad["passed"] and bad[f"{LAKE_TABLE}/lake_rows"] == 2 * db["P001"]
    assert bad[f"{LAKE_TABLE}/duplicated_keys"] == db["P001"]
    assert bad[f"{LAKE_TABLE}/lake_files"] == 2 and "appear more than once" in bad["problems"]

    # Repaired, then P002's object deleted: only P002 fails, with the rows it lacks.
    s3.delete_object(Bucket=athena.bucket, Key=copy)
    s3.delete_object(Bucket=athena.bucket, Key=object_key(athena, P2))
    results = run_check(instance, centrepoint, s3_lake, enrolled, athena)
    assert results[P1]["passed"]
    missing = results[P2]
    assert not missing["passed"] and missing[f"{LAKE_TABLE}/lake_rows"] == 0 and missing[f"{LAKE_TABLE}/lake_files"] == 0
    assert f"0 rows in the lake, {db['P002']} in TimescaleDB" in missing["problems"]
