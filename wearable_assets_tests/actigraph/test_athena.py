"""The Athena path: moto (S3 + Athena on 127.0.0.1) by default, real AWS when configured.

moto stores S3 objects for real but only *records* Athena SQL: it never parses or runs it,
and its INFORMATION_SCHEMA is empty (so dlt re-sends its CREATE statements on every run).
On moto these tests therefore check what lands in S3 and the SQL text that was sent. With
``WEARABLES_TEST_ATHENA_LAKE_URL`` set (docs/actigraph.md, "Athena") the same tests run on
AWS and additionally query the tables through Athena.
"""

from __future__ import annotations

import io
import re
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from wearable_assets.actigraph.ingest import LAKE_TABLE
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_tests.actigraph.conftest import AthenaTarget
from wearable_assets_tests.actigraph.test_assets import DAY, TYPED, db_rows, materialize


def parquet_rows(athena: AthenaTarget, key: str) -> list[tuple[Any, ...]]:
    body = athena.client("s3").get_object(Bucket=athena.bucket, Key=key)["Body"].read()
    parquet = pq.read_table(io.BytesIO(body))
    return duckdb.from_arrow(parquet).select(", ".join(TYPED)).order("setting_id").fetchall()


def test_hive_tables_replace_the_participant_day(
    enrolled: TimescaleResource, instance: dg.DagsterInstance, centrepoint: CentrePointResource,
    lake: LakeResource, athena: AthenaTarget,
) -> None:
    s3_lake = athena.lake("hive")
    for _ in range(2):
        assert materialize(instance, centrepoint, s3_lake, enrolled, partition_key=f"{DAY}|P001").success

    # Exactly one copy of the participant-day, at the deterministic key.
    table_prefix = athena.key_prefix(athena.dataset, LAKE_TABLE)
    keys = athena.keys(table_prefix)
    assert len(keys) == 1
    assert re.fullmatch(rf"{table_prefix}participant_id=P001/date={DAY}/\d+\.\d+\.\w+\.parquet", keys[0])
    raw = athena.key_prefix("raw", "centrepoint", "participant_id=P001", f"date={DAY}")
    assert athena.keys(raw) == [f"{raw}_fetch_status.json.gz", f"{raw}daily_statistics.json.gz"]

    # The DDL dlt sent: an external parquet table over the table's folder, typed columns.
    statements = athena.statements()
    creates = [s for s in statements if s.startswith("CREATE EXTERNAL TABLE") and f"`{LAKE_TABLE}`" in s]
    assert creates, statements
    ddl = creates[-1]
    for column, athena_type in [("participant_id", "string"), ("local_date", "date"), ("setting_id", "bigint"),
                                ("wear_minutes", "int"), ("total_counts", "bigint"), ("mets", "double"),
                                ("mvpa_minutes", "int"), ("is_valid_day", "boolean"), ("record", "string"),
                                ("loaded_at", "timestamp")]:
        assert f"`{column}` {athena_type}" in ddl, (column, ddl)
    assert "STORED AS PARQUET" in ddl and f"LOCATION 's3://{athena.bucket}/{table_prefix}'" in ddl
    # Non-Iceberg: rows move only as files, never through INSERT/MERGE/DELETE on the table.
    table = f'"awsdatacatalog"."{athena.dataset}"."{LAKE_TABLE}"'
    assert not [s for s in statements if re.match(rf"(INSERT INTO|MERGE INTO|DELETE FROM) {re.escape(table)}", s)]

    # The same partition in TimescaleDB (loaded from the records landed in S3) and in the
    # local lake read with DuckDB holds the same rows as the S3 parquet.
    from_s3 = parquet_rows(athena, keys[0])
    assert len(from_s3) == 2
    assert [r[: len(TYPED)] for r in db_rows(enrolled, "P001")] == from_s3
    assert materialize(instance, centrepoint, lake, enrolled, partition_key=f"{DAY}|P001").success
    local = duckdb.sql(
        f"SELECT {', '.join(TYPED)} FROM read_parquet('{lake.table_glob(LAKE_TABLE)}', hive_partitioning=true) "
        "ORDER BY setting_id"
    ).fetchall()
    assert local == from_s3
    if not athena.is_moto:  # what Athena itself reads after the re-run
        count = athena.query(f"SELECT count(*) FROM {athena.dataset}.{LAKE_TABLE} WHERE participant_id = 'P001'")
        assert count == [["2"]]


def test_iceberg_tables_replace_the_participant_day_by_merge(
    enrolled: TimescaleResource, instance: dg.DagsterInstance, centrepoint: CentrePointResource,
    athena: AthenaTarget,
) -> None:
    s3_lake = athena.lake("iceberg")
    for _ in range(2):
        assert materialize(instance, centrepoint, s3_lake, enrolled, partition_key=f"{DAY}|P002").success
    statements = athena.statements()
    ds = f'"awsdatacatalog"."{athena.dataset}"'
    creates = [s for s in statements if s.startswith(f"CREATE TABLE `awsdatacatalog`.`{athena.dataset}`.`{LAKE_TABLE}`")]
    assert creates and "'table_type'='ICEBERG'" in creates[0]
    # dlt's delete-insert merge, scoped to the participant-day: delete exactly its rows, then
    # insert the staged rows deduplicated on the natural key (on moto: accepted, not executed).
    deletes = [s for s in statements if s.startswith(f'DELETE FROM {ds}."{LAKE_TABLE}"')]
    assert deletes == [f'DELETE FROM {ds}."{LAKE_TABLE}" WHERE "participant_id" = \'P002\' '
                       f'AND "local_date" = DATE \'{DAY}\''] * 2
    inserts = [s for s in statements if s.startswith(f'INSERT INTO {ds}."{LAKE_TABLE}"')]
    assert len(inserts) == 2
    assert 'ROW_NUMBER() OVER (partition BY "local_date", "setting_id", "subject_id"' in inserts[-1]
    order = [i for i, s in enumerate(statements) if s in deletes or s in inserts]
    assert [statements[i].split()[0] for i in order] == ["DELETE", "INSERT", "DELETE", "INSERT"]
    # The rows travel through the staging dataset's files: one participant-day's worth.
    staged = athena.keys(athena.key_prefix(f"{athena.dataset}_staging", LAKE_TABLE))
    assert len(staged) == 1 and f"participant_id=P002/date={DAY}/" in staged[0]
    assert [r[1] for r in parquet_rows(athena, staged[0])] == [DAY]
    if athena.is_moto:
        assert athena.keys(athena.key_prefix(athena.dataset, LAKE_TABLE)) == []  # moto wrote no Iceberg data
    else:
        count = athena.query(f"SELECT count(*) FROM {athena.dataset}.{LAKE_TABLE} WHERE participant_id = 'P002'")
        assert count == [["1"]]
