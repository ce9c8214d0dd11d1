"""The Athena path against moto (S3 + Athena on 127.0.0.1, dummy credentials).

moto stores the S3 objects for real but only *records* Athena SQL: it never parses or runs
it, and its INFORMATION_SCHEMA is empty (so dlt re-sends its CREATE statements every run).
These tests therefore check what lands in S3 and the SQL text that was sent; the same
tests run against real AWS as described in docs/actigraph.md ("Athena").
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import boto3
import dagster as dg
import duckdb
import pyarrow.parquet as pq

from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.storage.lake import LakeResource
from wearable_assets.storage.timescale import TimescaleResource
from wearable_assets_tests.actigraph.test_assets import DAY, TYPED, db_rows, materialize

PREFIX = "wh"  # s3://lake/wh/...
TABLE_PREFIX = f"{PREFIX}/wearables/actigraph_daily_statistics/"


def athena_lake(endpoint: str, table_format: str) -> LakeResource:
    return LakeResource(
        url=f"s3://lake/{PREFIX}", destination="athena", table_format=table_format,  # type: ignore[arg-type]
        athena_query_result_bucket="s3://athena-results/", aws_region="us-east-1", aws_endpoint_url=endpoint,
    )


def sql_sent(endpoint: str) -> list[str]:
    """Every statement Athena received, oldest first."""
    athena = boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1")
    ids = [i for page in athena.get_paginator("list_query_executions").paginate() for i in page["QueryExecutionIds"]]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    executions.sort(key=lambda e: e["Status"]["SubmissionDateTime"])
    return [" ".join(e["Query"].split()) for e in executions]


def s3_keys(endpoint: str, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", []))


def s3_rows(endpoint: str, key: str) -> list[tuple[Any, ...]]:
    body = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").get_object(Bucket="lake", Key=key)
    parquet = pq.read_table(io.BytesIO(body["Body"].read()))  # noqa: F841 - DuckDB reads it by name
    return duckdb.sql(f"SELECT {', '.join(TYPED)} FROM parquet ORDER BY setting_id").fetchall()


def test_hive_tables_replace_the_participant_day(
    enrolled: TimescaleResource, instance: dg.DagsterInstance, centrepoint: CentrePointResource,
    lake: LakeResource, moto: str,
) -> None:
    s3_lake = athena_lake(moto, "hive")
    for _ in range(2):
        assert materialize(instance, centrepoint, s3_lake, enrolled, partition_key=f"{DAY}|P001").success

    # Exactly one copy of the participant-day, at the deterministic key.
    keys = s3_keys(moto, TABLE_PREFIX)
    assert len(keys) == 1
    assert re.fullmatch(rf"{TABLE_PREFIX}participant_id=P001/date={DAY}/\d+\.\d+\.\w+\.parquet", keys[0])
    assert s3_keys(moto, f"{PREFIX}/raw/centrepoint/participant_id=P001/date={DAY}/") == [
        f"{PREFIX}/raw/centrepoint/participant_id=P001/date={DAY}/daily_statistics.json.gz"]

    # The DDL dlt sent: an external parquet table over the table's folder, typed columns.
    statements = sql_sent(moto)
    creates = [s for s in statements if s.startswith("CREATE EXTERNAL TABLE") and "`actigraph_daily_statistics`" in s]
    assert creates, statements
    ddl = creates[-1]
    for column, athena_type in [("participant_id", "string"), ("local_date", "date"), ("setting_id", "bigint"),
                                ("wear_minutes", "int"), ("total_counts", "bigint"), ("mets", "double"),
                                ("mvpa_minutes", "int"), ("is_valid_day", "boolean"), ("record", "string"),
                                ("loaded_at", "timestamp")]:
        assert f"`{column}` {athena_type}" in ddl, (column, ddl)
    assert "STORED AS PARQUET" in ddl and f"LOCATION 's3://lake/{TABLE_PREFIX}'" in ddl
    # Non-Iceberg: rows move only as files, never through INSERT/MERGE/DELETE on the table.
    table = '"awsdatacatalog"."wearables"."actigraph_daily_statistics"'
    assert not [s for s in statements if re.match(rf"(INSERT INTO|MERGE INTO|DELETE FROM) {re.escape(table)}", s)]

    # The same partition in the local lake, read with DuckDB, and in TimescaleDB (loaded from
    # the records landed in S3) hold the same rows as the S3 parquet.
    from_s3 = s3_rows(moto, keys[0])
    assert len(from_s3) == 2
    assert [r[: len(TYPED)] for r in db_rows(enrolled, "P001")] == from_s3
    assert materialize(instance, centrepoint, lake, enrolled, partition_key=f"{DAY}|P001").success
    local = duckdb.sql(
        f"SELECT {', '.join(TYPED)} FROM read_parquet('{lake.table_glob('actigraph_daily_statistics')}', "
        "hive_partitioning=true) ORDER BY setting_id"
    ).fetchall()
    assert local == from_s3


def test_iceberg_tables_merge_on_the_natural_key(
    enrolled: TimescaleResource, instance: dg.DagsterInstance, centrepoint: CentrePointResource, moto: str,
) -> None:
    s3_lake = athena_lake(moto, "iceberg")
    assert materialize(instance, centrepoint, s3_lake, enrolled, partition_key=f"{DAY}|P002").success
    statements = sql_sent(moto)
    (create,) = [s for s in statements if re.match(r"CREATE TABLE `awsdatacatalog`.`wearables`.`actigraph_daily", s)]
    assert "'table_type'='ICEBERG'" in create and "`_row_key` string" in create
    # dlt's merge: find the stored rows whose natural key matches a staged row, delete them by
    # their row key, insert the staged rows. moto accepts these statements without running them.
    (select_old,) = [s for s in statements if s.startswith('CREATE TABLE "awsdatacatalog"."wearables_staging"')]
    for column in ("subject_id", "local_date", "setting_id"):
        assert f'd."{column}" = s."{column}"' in select_old
    assert any(s.startswith('DELETE FROM "awsdatacatalog"."wearables"."actigraph_daily_statistics" WHERE "_row_key" IN')
               for s in statements)
    assert any(s.startswith('INSERT INTO "awsdatacatalog"."wearables"."actigraph_daily_statistics"')
               for s in statements)
    # The rows travel through the staging dataset's files, one partition-day's worth.
    staged = s3_keys(moto, f"{PREFIX}/wearables_staging/actigraph_daily_statistics/")
    assert len(staged) == 1 and f"participant_id=P002/date={DAY}/" in staged[0]
    assert s3_keys(moto, TABLE_PREFIX) == []  # Iceberg data files are Athena's to write
    assert date.fromisoformat(str(s3_rows(moto, staged[0])[0][1])) == DAY
