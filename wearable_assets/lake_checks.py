"""Does the lake hold what TimescaleDB holds? One result per participant-day, read from the lake itself.

Why: the lake and TimescaleDB are written by two assets from the same landed payloads, and the
lake has no unique index. A crash between writing a participant-day's new files and deleting its
old ones, a file copied or deleted by hand, or a load that reached one store and not the other
leaves the two disagreeing, and nothing else notices. This check reads the participant-day's rows
*where analysts read them* and compares, per lake table:

* the row count with the TimescaleDB rows of the same participant-day;
* the natural key (TimescaleDB's primary/unique key): no key may appear twice in the lake.

The same SQL (``lake_counts_sql``) runs on two engines: DuckDB over the parquet files (the default
``filesystem`` destination, a local folder or S3), or Athena through dagster-aws's ``AthenaClientResource`` when
``WEARABLES_LAKE_DESTINATION=athena``; on Athena the participant-day's objects are also listed
through ``S3Resource`` (``lake_files`` in the metadata). Only the ``FROM`` differs between the two.

Importing this module loads neither boto3 nor dagster_aws: the Athena and S3 clients arrive as
Dagster resources, which are only defined (``resources.aws_resources``) for the Athena destination.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import dagster as dg

from wearable_assets import settings
from wearable_assets.outcomes import report_checks
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.partitions import participant_day_partitions, partition_days
from wearable_assets.storage.lake import Lake
from wearable_assets.storage.timescale import Timescale

CHECK_NAME = "lake_matches_timescale"
DESTINATION_ENV = settings.LAKE_DESTINATION_ENV

#: The participant-days of a check run, unnested in TimescaleDB: ``%(participant_ids)s``/``%(dates)s``.
_DAYS = "unnest(%(participant_ids)s::text[], %(dates)s::date[]) AS d(participant_id, local_date)"


@dataclass(frozen=True)
class LakeTable:
    """One lake table and how to count its participant-day in TimescaleDB.

    ``day_column`` is the lake column holding the participant-day's date; ``key`` is the
    TimescaleDB table's unique key (which therefore must not repeat in the lake either);
    ``timescale_sql`` returns ``(participant_id, local_date, rows)`` for every participant-day
    of ``_DAYS``, 0 when it has none.
    """

    name: str
    day_column: str
    key: tuple[str, ...]
    timescale_sql: str


def _by_day_column(table: str, column: str) -> str:
    return (f"SELECT d.participant_id, d.local_date, count(t.participant_id) FROM {_DAYS} "
            f"LEFT JOIN wearables.{table} t ON t.participant_id = d.participant_id AND t.{column} = d.local_date "
            "GROUP BY 1, 2")


#: Intraday samples carry no date in TimescaleDB: a participant-day is the UTC window of its local
#: day, in the zone it was loaded with (ingest_status.time_zone; the roster zone for older rows).
_INTRADAY_SQL = f"""
SELECT d.participant_id, d.local_date, count(i.participant_id)
FROM {_DAYS}
JOIN wearables.participants p ON p.participant_id = d.participant_id
LEFT JOIN LATERAL (
    SELECT s.time_zone FROM wearables.ingest_status s
    WHERE s.participant_id = d.participant_id AND s.local_date = d.local_date
      AND s.source IN ('google_health', 'fitbit_legacy') AND s.time_zone IS NOT NULL
    ORDER BY s.finished_at DESC LIMIT 1) z ON true
LEFT JOIN wearables.fitbit_intraday i
       ON i.participant_id = d.participant_id
      AND i.ts >= (d.local_date::timestamp AT TIME ZONE coalesce(z.time_zone, p.time_zone))
      AND i.ts < ((d.local_date + 1)::timestamp AT TIME ZONE coalesce(z.time_zone, p.time_zone))
GROUP BY 1, 2
"""

FITBIT_TABLES = (
    LakeTable("fitbit_intraday", "local_date", ("participant_id", "metric", "ts"), _INTRADAY_SQL),
    LakeTable("fitbit_sleep_stages", "sleep_date",
              ("participant_id", "sleep_date", "log_id", "start_ts", "stage", "is_short"),
              _by_day_column("fitbit_sleep_stages", "sleep_date")),
    LakeTable("fitbit_sleep_sessions", "sleep_date", ("participant_id", "sleep_date", "log_id"),
              _by_day_column("fitbit_sleep_sessions", "sleep_date")),
)
ACTIGRAPH_TABLES = (
    LakeTable("actigraph_daily_statistics", "local_date", ("participant_id", "local_date", "setting_id"),
              _by_day_column("actigraph_daily_statistics", "local_date")),
)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lake_counts_sql(source: str, table: LakeTable, days: Sequence[ParticipantDay]) -> str:
    """Per participant-day of ``days``: ``(participant_id, day, row_count, duplicated_keys)``.

    The one SQL text both engines run; ``source`` is the only engine-specific part (a DuckDB
    ``read_parquet(...)`` or Athena's ``"awsdatacatalog"."<dataset>"."<table>"``). Plain SQL that
    Trino (Athena) and DuckDB read alike: no engine functions, dates as ``DATE '...'`` literals.
    Participant-days without rows in the lake return no row (the caller counts them as 0).
    """
    day = f'"{table.day_column}"'
    group = list(dict.fromkeys(["participant_id", table.day_column, *table.key]))
    columns = ", ".join(f'"{c}"' for c in group)
    participants = ", ".join(_quote(p) for p in sorted({d.participant_id for d in days}))
    dates = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted({d.day for d in days}))
    return (
        f"SELECT participant_id, CAST({day} AS VARCHAR) AS day, SUM(n) AS row_count, "
        f"SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END) AS duplicated_keys "
        f"FROM (SELECT {columns}, COUNT(*) AS n FROM {source} "
        f"WHERE participant_id IN ({participants}) AND {day} IN ({dates}) "
        f"GROUP BY {columns}) AS k "
        f"GROUP BY participant_id, {day} ORDER BY 1, 2"
    )


@dataclass(frozen=True)
class LakeCount:
    rows: int
    duplicated_keys: int
    files: int | None = None  # objects under the participant-day's prefix (None: not listed)


def _parse(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[int, int]]:
    """Both engines' rows as ``{partition key: (rows, duplicated keys)}`` (Athena sends strings)."""
    return {ParticipantDay(date.fromisoformat(str(day)), str(pid)).key: (int(n), int(dupes))
            for pid, day, n, dupes in rows}


class LakeEngine(Protocol):
    def counts(self, table: LakeTable, days: Sequence[ParticipantDay]) -> dict[str, LakeCount]: ...


#: Participant-days per DuckDB query of ``DuckDBLake.counts`` (memory stays that of ten days).
DUCKDB_PARTICIPANT_DAYS_PER_QUERY = 10


class DuckDBLake:
    """The parquet lake read with DuckDB: only the run's participant-day folders are opened.

    A local folder is read directly; a lake on S3 (the filesystem destination, or Athena's files
    read without Athena) through the lake's own fsspec filesystem registered in DuckDB, so no
    DuckDB extension is needed.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.fs = lake.filesystem()

    def files(self, table: LakeTable, pday: ParticipantDay) -> list[str]:
        prefix = self.lake.partition_prefix(table.name, pday.participant_id, pday.day)
        found = sorted(self.fs.glob(f"{prefix}/*.parquet")) if self.fs.exists(prefix) else []
        return found if self.lake.is_local else [f"s3://{path.removeprefix('s3://')}" for path in found]

    def counts(self, table: LakeTable, days: Sequence[ParticipantDay]) -> dict[str, LakeCount]:
        import duckdb

        files = {d.key: self.files(table, d) for d in days}
        found: dict[str, tuple[int, int]] = {}
        with duckdb.connect() as con:
            if not self.lake.is_local:
                con.register_filesystem(self.fs)
            # A few participant-days per query: the duplicate count groups by every sample's
            # key, so one query over a whole run held a hash table of all its samples (a run
            # worker's peak memory grew from 400 MB at 10 participant-days per run to 940 MB at 200).
            for start in range(0, len(days), DUCKDB_PARTICIPANT_DAYS_PER_QUERY):
                chunk = days[start:start + DUCKDB_PARTICIPANT_DAYS_PER_QUERY]
                paths = [f for d in chunk for f in files[d.key]]
                if not paths:
                    continue
                # The folders' hive keys repeat columns the files hold; union_by_name: files of
                # different loads may differ in all-null columns.
                source = (f"read_parquet([{', '.join(_quote(f) for f in paths)}], "
                          "hive_partitioning = false, union_by_name = true)")
                found |= _parse(con.execute(lake_counts_sql(source, table, chunk)).fetchall())
        return {d.key: LakeCount(*found.get(d.key, (0, 0)), files=len(files[d.key])) for d in days}


class AthenaLake:
    """The lake on S3 read through Athena (``AthenaClientResource``) and listed through ``S3Resource``.

    ``athena_client`` is dagster-aws's ``AthenaClient``: it runs in the resource's workgroup and
    reads the result CSV from the workgroup's output location, so that workgroup must have one.
    ``s3_client``: a boto3 S3 client (what ``S3Resource`` gives a check), or None to skip listing.
    """

    def __init__(self, lake: Lake, athena_client: Any, s3_client: Any | None) -> None:
        self.lake = lake
        self.athena_client = athena_client
        self.s3_client = s3_client

    def source(self, table: LakeTable) -> str:
        return f'"awsdatacatalog"."{self.lake.dataset}"."{table.name}"'

    def files(self, table: LakeTable, pday: ParticipantDay) -> int | None:
        if self.s3_client is None or self.lake.table_format == "iceberg":
            return None  # Iceberg data files are Athena's own layout, not the participant-day's prefix
        bucket, _, prefix = self.lake.partition_prefix(table.name, pday.participant_id, pday.day) \
            .removeprefix("s3://").partition("/")
        pages = self.s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        return sum(1 for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))

    def counts(self, table: LakeTable, days: Sequence[ParticipantDay]) -> dict[str, LakeCount]:
        rows = self.athena_client.execute_query(lake_counts_sql(self.source(table), table, days), fetch_results=True)
        found = _parse(rows)
        return {d.key: LakeCount(*found.get(d.key, (0, 0)), files=self.files(table, d)) for d in days}


def timescale_counts(timescale: Timescale, table: LakeTable, days: Sequence[ParticipantDay]) -> dict[str, int]:
    params = {"participant_ids": [d.participant_id for d in days], "dates": [d.day for d in days]}
    return {ParticipantDay(day, pid).key: int(n) for pid, day, n in timescale.fetch(table.timescale_sql, params)}


def compare(engine: LakeEngine, timescale: Timescale, tables: Sequence[LakeTable],
            days: Sequence[ParticipantDay]) -> dict[str, tuple[bool, dict[str, Any]]]:
    """``{partition key: (passed, metadata)}``: every table's lake rows equal its TimescaleDB rows
    and no key repeats. Metadata per table: ``<table>/lake_rows``, ``/timescale_rows``,
    ``/duplicated_keys`` (and ``/lake_files`` where listed)."""
    metadata: dict[str, dict[str, Any]] = {d.key: {} for d in days}
    problems: dict[str, list[str]] = {d.key: [] for d in days}
    for table in tables:
        lake = engine.counts(table, days)
        db = timescale_counts(timescale, table, days)
        for d in days:
            count, expected = lake[d.key], db.get(d.key, 0)
            meta = metadata[d.key]
            meta[f"{table.name}/lake_rows"] = count.rows
            meta[f"{table.name}/timescale_rows"] = expected
            meta[f"{table.name}/duplicated_keys"] = count.duplicated_keys
            if count.files is not None:
                meta[f"{table.name}/lake_files"] = count.files
            if count.rows != expected:
                problems[d.key].append(f"{table.name}: {count.rows} rows in the lake, {expected} in TimescaleDB")
            if count.duplicated_keys:
                problems[d.key].append(f"{table.name}: {count.duplicated_keys} keys ({', '.join(table.key)}) "
                                       "appear more than once in the lake")
    for key, found in problems.items():
        if found:
            metadata[key]["problems"] = "; ".join(found)
    return {key: (not problems[key], metadata[key]) for key in metadata}


def lake_destination() -> str:
    """The destination the definitions wire (``resources.lake_resource`` reads the same variable)."""
    return settings.text(DESTINATION_ENV, "filesystem")


def engine_for(lake: Lake, resources: Any) -> LakeEngine:
    if lake.destination != "athena":
        return DuckDBLake(lake)
    athena = getattr(resources, "athena", None)
    if athena is None:
        raise RuntimeError(f"the lake's destination is Athena but no `athena` resource is defined: set "
                           f"{DESTINATION_ENV}=athena where the definitions are loaded (resources.aws_resources)")
    # S3Resource puts its boto3 client on the context itself (IAttachDifferentObjectToOpContext).
    return AthenaLake(lake, athena.get_client(), getattr(resources, "s3", None))


def lake_matches_timescale(asset_key: dg.AssetKey, tables: Sequence[LakeTable],
                           destination: str | None = None) -> dg.AssetChecksDefinition:
    """The check on one lake asset. ``destination`` (default: ``WEARABLES_LAKE_DESTINATION``)
    decides which resources it requires: the Athena one also needs ``athena`` and ``s3``."""
    required = {"timescale", "lake"} | ({"athena", "s3"} if (destination or lake_destination()) == "athena" else set())
    names = ", ".join(t.name for t in tables)

    @dg.asset_check(
        asset=asset_key,
        name=CHECK_NAME,
        partitions_def=participant_day_partitions,
        required_resource_keys=required,
        blocking=False,
        description=f"Reads the participant-day back from the lake ({names}; DuckDB locally, Athena on AWS): "
        "as many rows as TimescaleDB holds for it and no key twice. One result per participant-day.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> Any:
        days = partition_days(context)  # type: ignore[arg-type]
        lake: Lake = context.resources.lake
        results = compare(engine_for(lake, context.resources), context.resources.timescale, tables, days)
        yield from report_checks(context, asset_key, CHECK_NAME, results)

    return _check


FITBIT_LAKE_CHECK = lake_matches_timescale(dg.AssetKey(["fitbit", "intraday_parquet"]), FITBIT_TABLES)
ACTIGRAPH_LAKE_CHECK = lake_matches_timescale(dg.AssetKey(["actigraph", "daily_statistics_parquet"]),
                                              ACTIGRAPH_TABLES)
