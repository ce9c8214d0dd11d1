"""The parquet lake (the Athena side): raw API payloads and canonical rows, written through dlt.

Layout, the same on a local folder and on S3::

    <lake>/raw/<source>/participant_id=<P>/date=<D>/<name>.json.gz          exact API payloads
    <lake>/<dataset>/<table>/participant_id=<P>/date=<D>/<load_id>.<n>.parquet

Why the partition-replace step: on the filesystem destination and on non-Iceberg Athena tables
dlt's ``merge`` silently becomes ``append`` and ``replace`` wipes the whole table, so neither
gives "re-running a participant-day replaces it". We append the new files under the
participant-day's own prefix and then delete that prefix's older files. A crash between the two
steps can leave both versions until the next run; ``latest_load_only`` readers (and Athena
views that keep the newest ``_load_id``) are unaffected. With ``table_format='iceberg'`` on
Athena, dlt's real ``merge`` on the natural key is used instead.
"""

from __future__ import annotations

import gzip
import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import fsspec
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

LAYOUT = "{table_name}/participant_id={participant_id}/date={date}/{load_id}.{file_id}.{ext}"


#: Column added to Iceberg tables whose merge key has several columns (see ``with_row_key``).
ROW_KEY = "_row_key"


def with_row_key(data: pa.Table, primary_key: list[str]) -> pa.Table:
    """Add ``_row_key``: the compound key's values joined into one string.

    dlt's Athena merge deletes the replaced rows through a single unique column and refuses a
    compound primary key without one ("Multiple primary key columns found ... Cannot use as
    row_key"); a value derived from the key is unique exactly when the key is.
    """
    parts = [pc.cast(data.column(name), pa.string()) for name in primary_key]
    key = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "\x1f")
    return data.append_column(ROW_KEY, key)


@dataclass(frozen=True)
class LakeWrite:
    table: str
    rows: int
    load_id: str | None
    files_written: list[str]
    files_removed: list[str]


class LakeResource(dg.ConfigurableResource):
    """Where parquet and raw payloads go: a local folder (default) or S3 behind Athena.

    AWS credentials are never fields here: boto's default chain (environment, profile, role)
    supplies them, so they stay out of Dagster config, logs and metadata.
    """

    url: str
    dataset: str = "wearables"
    destination: Literal["filesystem", "athena"] = "filesystem"
    table_format: Literal["hive", "iceberg"] = "hive"
    athena_query_result_bucket: str | None = None
    athena_work_group: str | None = None
    aws_region: str | None = None
    #: S3-compatible endpoint (moto in tests); None means AWS itself.
    aws_endpoint_url: str | None = None

    # --- locations -------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def bucket_url(self) -> str:
        if self.is_local:
            return Path(self.url.removeprefix("file://")).resolve().as_uri()
        return self.url.rstrip("/")

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
            fh.write(gzip.compress(body, mtime=0))
        return key

    def read_raw(self, source: str, participant_id: str, day: date, name: str) -> bytes:
        with self._fs().open(self.raw_key(source, participant_id, day, name), "rb") as fh:
            return gzip.decompress(fh.read())

    # --- canonical rows --------------------------------------------------------------------
    def _destinations(self, participant_id: str, day: date) -> tuple[Any, Any]:
        import dlt  # imported when writing: loads into TimescaleDB and raw landing never need it

        placeholders = {"participant_id": participant_id, "date": day.isoformat()}
        credentials = self._aws_credentials()
        files = dlt.destinations.filesystem(
            bucket_url=self.bucket_url, layout=LAYOUT, extra_placeholders=placeholders, credentials=credentials
        )
        if self.destination == "filesystem":
            return files, None
        athena = dlt.destinations.athena(
            query_result_bucket=self.athena_query_result_bucket,
            athena_work_group=self.athena_work_group,
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

    def write_partition(
        self,
        table: str,
        participant_id: str,
        day: date,
        data: pa.Table,
        primary_key: list[str] | None = None,
    ) -> LakeWrite:
        """Make ``table``'s participant-day hold exactly ``data`` (idempotent per partition)."""
        import dlt

        iceberg = self.destination == "athena" and self.table_format == "iceberg"
        destination, staging = self._destinations(participant_id, day)
        with tempfile.TemporaryDirectory(prefix="wearables-dlt-") as pipelines_dir:
            # A private working dir per write: concurrent runs never share dlt state (dagster#21022).
            pipeline = dlt.pipeline(
                pipeline_name=f"lake_{table}",
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
            columns = None
            if iceberg and primary_key and len(primary_key) > 1:
                data, columns = with_row_key(data, primary_key), {ROW_KEY: {"unique": True}}
            resource = dlt.resource(
                data,
                name=table,
                write_disposition="merge" if iceberg else "append",
                primary_key=primary_key if iceberg else None,
                table_format="iceberg" if iceberg else None,
                columns=columns,
            )
            info = pipeline.run(resource, loader_file_format="parquet")
        info.raise_on_failed_jobs()
        load_id = info.loads_ids[0] if info.loads_ids else None
        written: list[str] = []
        removed: list[str] = []
        if not iceberg and load_id is not None:
            fs = self._fs()
            prefix = self.partition_prefix(table, participant_id, day)
            for path in sorted(fs.find(prefix)):
                name = path.rsplit("/", 1)[-1]
                if name.startswith(f"{load_id}."):
                    written.append(path)
                else:
                    fs.rm(path)
                    removed.append(path)
        return LakeWrite(table=table, rows=data.num_rows, load_id=load_id, files_written=written, files_removed=removed)

    def remove_partition(self, table: str, participant_id: str, day: date) -> list[str]:
        """Delete a participant-day's files (used when a re-run finds no rows at all)."""
        fs = self._fs()
        prefix = self.partition_prefix(table, participant_id, day)
        paths = sorted(fs.find(prefix)) if fs.exists(prefix) else []
        for path in paths:
            fs.rm(path)
        return paths
