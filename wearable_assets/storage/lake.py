"""The parquet lake (the Athena side): raw API payloads and canonical rows.

Layout, the same on a local folder and on S3::

    <lake>/raw/<source>/participant_id=<P>/date=<D>/<name>.json.gz          exact API payloads
    <lake>/<dataset>/<table>/participant_id=<P>/date=<D>/<load_id>.<n>.parquet

Who writes the parquet: on the ``filesystem`` destination (a local folder or an S3 prefix read
with DuckDB) the participant-day's tables are written with pyarrow, one file per table, named
like dlt's (``<load_id>.<random>.parquet``, the load id a Unix time). dlt's filesystem
destination wrote exactly the same files but spent ~0.15-0.26 CPU-seconds per write on pipeline
set-up, normalisation and bookkeeping whatever the size (two writes per participant-day: the
largest CPU cost of a ranged run, docs/orchestration.md "Throughput"), and the lake's readers
use none of its bookkeeping (``_dlt_loads``, schemas). On the ``athena`` destination dlt still
writes: it stages the files in the same layout and creates and evolves the Athena tables in the
Glue catalog (and runs the Iceberg merges), which is what it is for.

Why the partition-replace step: on the filesystem destination and on non-Iceberg Athena tables
dlt's ``merge`` silently becomes ``append`` and ``replace`` wipes the whole table, so neither
gives "re-running a participant-day replaces it". We append the new files under the
participant-day's own prefix and then delete that prefix's files of *older* loads (dlt load ids
are Unix times: compared as numbers), never those of a newer load. A crash between the two
steps can leave both versions until the next run; ``latest_load_only`` readers (and Athena
views that keep the newest ``_load_id``) are unaffected. With ``table_format='iceberg'`` on
Athena, dlt's ``delete-insert`` merge is used instead, scoped to the participant-day
(``destination_scope``: Athena deletes exactly that day's rows, then inserts the new ones,
deduplicated on the table's natural key), so rows that vanished upstream vanish here too.

Overlapping writers of one participant-day: the rule is that callers hold the participant-day's
lock (``Timescale.participant_day_lock``) around the whole read-modify-write, raw landing
included, so writers take turns. ``Lake`` itself stays free of database access, so it does not
take the lock; instead its deletions are safe even for a writer that does not hold it: deleting
only older loads' files means two interleaved writers can at worst leave both versions (the
lake's duplicate check reports it, the next run clears it), never an empty participant-day. On
raw payloads, ``delete_raw`` removes the folder it empties (and ``remove_empty_raw_folders``
sweeps older leftovers), so re-runs leave no empty folders.

``Lake`` is plain Python (no Dagster), so a loader process does not import Dagster; the
Dagster resource ``LakeResource`` (``storage.resources``) is a subclass with the same fields as
config.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

LAYOUT = "{table_name}/participant_id={participant_id}/date={date}/{load_id}.{file_id}.{ext}"
#: A dlt load id at the start of a file name: ``str(time.time())``-like, e.g. ``1796192185.4680552``.
_LOAD_ID = re.compile(r"(\d+\.\d+)\.")


def load_id_of(path: str) -> float | None:
    """The load id of a partition file, as a number (dlt load ids are Unix times, so a larger
    one is a later load); None for a file whose name does not start with one."""
    match = _LOAD_ID.match(path.rsplit("/", 1)[-1])
    return float(match.group(1)) if match else None


def _older_than(path: str, load_id: float) -> bool:
    """Whether ``path`` belongs to a load older than ``load_id``. A file without a load id in
    its name is not ours to keep (it predates the layout): it counts as older."""
    found = load_id_of(path)
    return found is None or found < load_id


@dataclass(frozen=True)
class PartitionTable:
    """One table's rows of one participant-day (or cohort week), as the lake should hold them.

    ``scope`` names the columns and values that identify the partition's rows inside the table:
    plain parquet tables are replaced by folder (the layout's participant and date), Iceberg
    tables by deleting ``WHERE <scope>`` before inserting, so the data must carry those columns.
    """

    name: str
    data: pa.Table
    scope: Mapping[str, str | date]
    #: Natural key: staged rows are deduplicated on it in the Iceberg merge.
    primary_key: tuple[str, ...] = ()

    def scope_sql(self) -> str:
        """``participant_id = 'P001' AND local_date = DATE '2026-11-01'`` (values are validated
        ids and dates; quotes are doubled anyway)."""
        def literal(value: str | date) -> str:
            if isinstance(value, date):
                return f"DATE '{value.isoformat()}'"
            return "'" + str(value).replace("'", "''") + "'"

        return " AND ".join(f'"{column}" = {literal(value)}' for column, value in self.scope.items())


@dataclass(frozen=True)
class LakeWrite:
    table: str
    rows: int
    load_id: str | None
    files_written: list[str]
    files_removed: list[str]


class Lake:
    """Where parquet and raw payloads go: a local folder (default) or S3 behind Athena.

    AWS credentials are never fields here: boto's default chain (environment, profile, role)
    supplies them, so they stay out of Dagster config, logs and metadata.
    ``aws_endpoint_url``: an S3-compatible endpoint (moto in tests); None means AWS itself.
    """

    def __init__(
        self,
        url: str,
        dataset: str = "wearables",
        destination: Literal["filesystem", "athena"] = "filesystem",
        table_format: Literal["hive", "iceberg"] = "hive",
        athena_query_result_bucket: str | None = None,
        athena_work_group: str | None = None,
        aws_region: str | None = None,
        aws_endpoint_url: str | None = None,
    ) -> None:
        self.url = url
        self.dataset = dataset
        self.destination = destination
        self.table_format = table_format
        self.athena_query_result_bucket = athena_query_result_bucket
        self.athena_work_group = athena_work_group
        self.aws_region = aws_region
        self.aws_endpoint_url = aws_endpoint_url

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(url={self.url!r}, dataset={self.dataset!r}, "
                f"destination={self.destination!r}, table_format={self.table_format!r})")

    # --- locations -------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def bucket_url(self) -> str:
        if self.is_local:
            return Path(self.url.removeprefix("file://")).resolve().as_uri()
        return self.url.rstrip("/")

    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The lake's fsspec filesystem (local, or S3 with the lake's region and endpoint), for readers."""
        return self._fs()

    def _fs(self) -> fsspec.AbstractFileSystem:
        if self.is_local:
            return fsspec.filesystem("file", auto_mkdir=True)
        options: dict[str, Any] = {}
        if self.aws_endpoint_url:
            options["client_kwargs"] = {"endpoint_url": self.aws_endpoint_url}
        if self.aws_region:
            options.setdefault("client_kwargs", {})["region_name"] = self.aws_region
        return fsspec.filesystem("s3", **options)

    def _path(self, *parts: str) -> str:
        root = self.url.removeprefix("file://").rstrip("/") if self.is_local else self.url.rstrip("/")
        return "/".join([root, *parts])

    def partition_prefix(self, table: str, participant_id: str, day: date) -> str:
        return self._path(self.dataset, table, f"participant_id={participant_id}", f"date={day.isoformat()}")

    def table_glob(self, table: str) -> str:
        """Glob of every parquet file of ``table`` (for DuckDB ``read_parquet``)."""
        return self._path(self.dataset, table, "**", "*.parquet")

    # --- raw payloads ----------------------------------------------------------------------
    def raw_key(self, source: str, participant_id: str, day: date, name: str) -> str:
        return self._path("raw", source, f"participant_id={participant_id}", f"date={day.isoformat()}", f"{name}.json.gz")

    def land_raw(self, source: str, participant_id: str, day: date, name: str, payload: Any) -> str:
        """Store an API payload exactly as received (gzip JSON) and return its key.

        ``payload`` is the decoded JSON document or the raw ``bytes``/``str`` body (kept even
        when it does not parse, so a malformed response can be inspected later).
        """
        key = self.raw_key(source, participant_id, day, name)
        if isinstance(payload, (bytes, bytearray)):
            body = bytes(payload)
        elif isinstance(payload, str):
            body = payload.encode("utf-8")
        else:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        fs = self._fs()
        fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(key, "wb") as fh:
            # Level 3, not gzip's default 9: on a 2.5 MB heart-rate page, 3.3 ms and 68 KB against
            # 8.7 ms and 48 KB at level 6 (and more at 9); compression was 13% of a run's CPU.
            fh.write(gzip.compress(body, compresslevel=3, mtime=0))
        return key

    def read_raw(self, source: str, participant_id: str, day: date, name: str) -> bytes:
        with self._fs().open(self.raw_key(source, participant_id, day, name), "rb") as fh:
            return gzip.decompress(fh.read())

    def list_raw(self, source: str, participant_id: str, day: date) -> list[str]:
        """Names of the participant-day's raw payloads (as given to ``land_raw``), sorted."""
        fs = self._fs()
        folder = self.raw_key(source, participant_id, day, "x").rsplit("/", 1)[0]
        if not fs.exists(folder):
            return []
        root = folder.removeprefix("s3://") + "/"
        return sorted(path.removeprefix("s3://").removeprefix(root).removesuffix(".json.gz")
                      for path in fs.find(folder) if path.endswith(".json.gz"))

    def delete_raw(self, source: str, participant_id: str, day: date, name: str) -> None:
        """Delete one raw payload, and on a local folder the sub-folders of the participant-day
        it leaves empty (``fetch=<id>/``; S3 has no folders): re-runs must not pile up empty
        folders. Only empty folders are removed (``rmdir``), so a concurrent write is never lost."""
        key = self.raw_key(source, participant_id, day, name)
        fs = self._fs()
        fs.rm(key)
        if not self.is_local:
            return
        day_folder = self.raw_key(source, participant_id, day, "x").rsplit("/", 1)[0]
        folder = key.rsplit("/", 1)[0]
        while folder != day_folder and folder.startswith(day_folder + "/"):
            try:
                Path(folder).rmdir()
            except OSError:  # not empty (or already gone): leave it
                return
            folder = folder.rsplit("/", 1)[0]

    def remove_empty_raw_folders(self, source: str, participant_id: str, day: date) -> list[str]:
        """Remove the participant-day's empty sub-folders (local lake; S3 has no folders), e.g.
        ``fetch=`` folders emptied by an earlier version that did not remove them. ``rmdir``
        only: a folder that holds anything stays. Returns the folders removed."""
        if not self.is_local:
            return []
        day_folder = Path(self.raw_key(source, participant_id, day, "x")).parent
        if not day_folder.is_dir():
            return []
        removed = []
        for folder in sorted((p for p in day_folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone)
                continue
            removed.append(str(folder))
        return removed

    # --- canonical rows --------------------------------------------------------------------
    def _destinations(self, participant_id: str, day: date) -> tuple[Any, Any]:
        """dlt's Athena destination and its staging filesystem (the lake's layout)."""
        import dlt  # imported for Athena only: the filesystem destination and raw landing never need it

        placeholders: dict[str, Any] = {"participant_id": participant_id, "date": day.isoformat()}
        credentials = self._aws_credentials()
        files = dlt.destinations.filesystem(
            bucket_url=self.bucket_url, layout=LAYOUT, extra_placeholders=placeholders, credentials=credentials
        )
        athena = dlt.destinations.athena(
            query_result_bucket=self.athena_query_result_bucket,
            athena_work_group=self.athena_work_group,  # type: ignore[arg-type]  # dlt: `str = None`
            credentials=credentials,
            force_iceberg=self.table_format == "iceberg",
        )
        return athena, files

    def _aws_credentials(self) -> dict[str, Any] | None:
        if self.is_local:
            return None
        creds: dict[str, Any] = {}
        if self.aws_region:
            creds["region_name"] = self.aws_region
        if self.aws_endpoint_url:
            creds["endpoint_url"] = self.aws_endpoint_url
        return creds or None

    def write_partition(self, participant_id: str, day: date, tables: Sequence[PartitionTable]) -> list[LakeWrite]:
        """Make each table's participant-day hold exactly its ``data`` (idempotent per partition).

        A table with no rows loses the participant-day's earlier rows instead. Files of loads
        newer than this one are never deleted (module docstring): callers serialise writers of
        a participant-day with its lock; without it, the worst case is two versions, never none.
        """
        for table in tables:
            missing = sorted(set(table.scope) - set(table.data.column_names))
            if table.data.num_rows and missing:
                raise ValueError(f"lake table {table.name}: scope columns {missing} are not in the data")
        if self.destination == "filesystem":
            return self._write_files(participant_id, day, tables)
        return self._write_with_dlt(participant_id, day, tables)

    def _write_files(self, participant_id: str, day: date, tables: Sequence[PartitionTable]) -> list[LakeWrite]:
        """The filesystem destination: one parquet file per table, then the older loads' files go.

        A local file is written under a temporary name and renamed into place, so a reader never
        sees half a file (an S3 PUT is atomic by itself)."""
        load_id = f"{time.time():.6f}"  # a number, like dlt's load ids: later loads compare larger
        fs = self._fs()
        writes: list[LakeWrite] = []
        for table in tables:
            if table.data.num_rows == 0:
                writes.append(self._remove_partition(table, participant_id, day))
                continue
            prefix = self.partition_prefix(table.name, participant_id, day)
            path = f"{prefix}/{load_id}.{uuid.uuid4().hex[:10]}.parquet"
            if self.is_local:
                os.makedirs(prefix, exist_ok=True)
                partial = f"{prefix}/.{path.rsplit('/', 1)[-1]}.partial"
                pq.write_table(table.data, partial)
                os.replace(partial, path)
            else:
                with fs.open(path, "wb") as fh:
                    pq.write_table(table.data, fh)
            writes.append(LakeWrite(table=table.name, rows=table.data.num_rows, load_id=load_id,
                                    files_written=[path], files_removed=self._remove_older(fs, prefix, load_id)))
        return writes

    def _remove_older(self, fs: fsspec.AbstractFileSystem, prefix: str, load_id: str) -> list[str]:
        """Delete the files under ``prefix`` of loads older than ``load_id`` (module docstring)."""
        removed = []
        ours = float(load_id)
        for path in sorted(fs.find(prefix)):
            name = path.rsplit("/", 1)[-1]
            if not name.startswith(f"{load_id}.") and not name.startswith(".") and _older_than(path, ours):
                self._rm_gone_ok(fs, path)
                removed.append(path)
        return removed

    def _write_with_dlt(self, participant_id: str, day: date, tables: Sequence[PartitionTable]) -> list[LakeWrite]:
        """The athena destination: all tables through ONE dlt pipeline run (each dlt run costs
        ~0.15 s of configuration and bookkeeping whatever its size), staged as parquet in the
        lake's layout, the Athena tables created or evolved by dlt."""
        import dlt  # imported when writing to Athena only

        iceberg = self.table_format == "iceberg"
        writes: list[LakeWrite] = []
        resources = []
        for table in tables:
            if table.data.num_rows == 0:
                writes.append(self._remove_partition(table, participant_id, day))
                continue
            if iceberg:
                # delete-insert scoped to the participant-day: Athena deletes exactly its rows,
                # then inserts the staged ones (deduplicated on the natural key when there is one).
                disposition: Any = {"disposition": "merge", "strategy": "delete-insert",
                                    "destination_scope": table.scope_sql()}
            else:
                disposition = "append"  # then the prefix's older files are removed (module docstring)
            resources.append(dlt.resource(
                table.data, name=table.name, write_disposition=disposition,
                primary_key=list(table.primary_key) if iceberg and table.primary_key else None,
                table_format="iceberg" if iceberg else None,
            ))  # type: ignore[call-overload]  # dlt types these hints' None defaults as non-optional
        if not resources:
            return writes
        destination, staging = self._destinations(participant_id, day)
        with tempfile.TemporaryDirectory(prefix="wearables-dlt-") as pipelines_dir:
            # A private working dir per write: concurrent runs never share dlt state (dagster#21022).
            pipeline = dlt.pipeline(
                pipeline_name="lake_partition",
                pipelines_dir=pipelines_dir,
                destination=destination,
                staging=staging,
                dataset_name=self.dataset,
            )
            # These pipelines keep no state between writes (no incremental cursors) and their
            # working dir is deleted below, so skip what only matters for long-lived pipelines:
            # downloading state and schemas from the destination before each run (~0.13 s a
            # write) and saving a runtime trace nobody reads.
            pipeline.config.restore_from_destination = False
            pipeline.config.enable_runtime_trace = False
            info = pipeline.run(resources, loader_file_format="parquet")
        info.raise_on_failed_jobs()
        load_id = info.loads_ids[0] if info.loads_ids else None
        fs = self._fs() if not iceberg else None
        for table in tables:
            if table.data.num_rows == 0:
                continue
            written: list[str] = []
            removed: list[str] = []
            if fs is not None and load_id is not None:
                prefix = self.partition_prefix(table.name, participant_id, day)
                written = [p for p in sorted(fs.find(prefix)) if p.rsplit("/", 1)[-1].startswith(f"{load_id}.")]
                removed = self._remove_older(fs, prefix, load_id)
            writes.append(LakeWrite(table=table.name, rows=table.data.num_rows, load_id=load_id,
                                    files_written=written, files_removed=removed))
        return writes

    def _remove_partition(self, table: PartitionTable, participant_id: str, day: date) -> LakeWrite:
        """Delete a participant-day's rows: its files, and on Iceberg its rows through Athena.

        Like a write, the removal is an event in time: it deletes the files of loads older than
        itself (the current time as a load id), not those of a load that started after it."""
        removed: list[str] = []
        if self.destination == "athena" and self.table_format == "iceberg":
            self._iceberg_delete(table)
        else:
            now = time.time()
            fs = self._fs()
            prefix = self.partition_prefix(table.name, participant_id, day)
            for path in sorted(fs.find(prefix)) if fs.exists(prefix) else []:
                if _older_than(path, now):
                    self._rm_gone_ok(fs, path)
                    removed.append(path)
        return LakeWrite(table=table.name, rows=0, load_id=None, files_written=[], files_removed=removed)

    @staticmethod
    def _rm_gone_ok(fs: fsspec.AbstractFileSystem, path: str) -> None:
        """Delete ``path``; another writer having deleted it first is the same outcome."""
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path)

    def _iceberg_delete(self, table: PartitionTable) -> None:
        import dlt
        from dlt.destinations.exceptions import DatabaseUndefinedRelation

        destination, staging = self._destinations("none", date(1970, 1, 1))
        with tempfile.TemporaryDirectory(prefix="wearables-dlt-") as pipelines_dir:
            pipeline = dlt.pipeline(pipeline_name="lake_partition", pipelines_dir=pipelines_dir,
                                    destination=destination, staging=staging, dataset_name=self.dataset)
            with pipeline.sql_client() as client:
                if not client.has_dataset():
                    return
                name = client.make_qualified_table_name(table.name)
                try:
                    client.execute_sql(f"DELETE FROM {name} WHERE {table.scope_sql()}")
                except DatabaseUndefinedRelation:
                    return  # nothing was ever written to this table
