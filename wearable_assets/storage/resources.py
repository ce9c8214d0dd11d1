"""The Dagster resources of the two writers: config fields on top of the plain classes.

All behaviour lives in ``storage.timescale.Timescale`` and ``storage.lake.Lake``; a resource
is a subclass that declares the same arguments as Dagster config fields (so they can come from
``EnvVar``) and keeps ``Timescale``'s per-object state as pydantic private attributes. Code that
only needs a writer takes the plain class, so a resource and a plain object both work, and a
process that only loads data never imports Dagster.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import PrivateAttr

from wearable_assets.storage.lake import Lake
from wearable_assets.storage.timescale import Timescale


class TimescaleResource(dg.ConfigurableResource, Timescale):
    """Connection to the ``wearables`` schema in TimescaleDB (see ``Timescale``).

    In the definitions ``dsn`` is read when a run starts (``WEARABLES_TIMESCALE_DSN`` or the
    project-local server, ``wearable_assets/resources.py``), never from Dagster config; it is
    never put in logs or metadata (use ``settings.mask_dsn`` to print it).
    """

    dsn: str
    apply_migrations: bool = True

    _migrated: bool = PrivateAttr(default=False)
    _owner_checked: bool = PrivateAttr(default=False)
    _column_types: dict[tuple[str, tuple[str, ...]], list[str]] = PrivateAttr(default_factory=dict)


class LakeResource(dg.ConfigurableResource, Lake):
    """Where parquet and raw payloads go: a local folder (default) or S3 behind Athena (see ``Lake``).

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
