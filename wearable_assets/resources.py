"""The shared resources every domain uses: TimescaleDB and the lake.

Domain-specific resources (OAuth clients, dlt sources) live in their domain's ``resources.py``.
Values come from the environment (``EnvVar``) so that secrets never enter code or Dagster config;
the Makefile and CLI set the local defaults from ``settings``.
"""

from __future__ import annotations

import os

import dagster as dg

from wearable_assets import settings
from wearable_assets.storage.resources import LakeResource, TimescaleResource


def timescale_resource() -> TimescaleResource:
    return TimescaleResource(dsn=dg.EnvVar(settings.TIMESCALE_DSN_ENV))


def lake_resource() -> LakeResource:
    """Local parquet lake unless ``WEARABLES_LAKE_DESTINATION=athena`` (see README, "Athena")."""
    destination = os.environ.get("WEARABLES_LAKE_DESTINATION", "filesystem")
    if destination == "athena":
        return LakeResource(
            url=dg.EnvVar(settings.LAKE_URL_ENV),
            destination="athena",
            table_format=os.environ.get("WEARABLES_LAKE_TABLE_FORMAT", "hive"),  # type: ignore[arg-type]
            athena_query_result_bucket=dg.EnvVar("WEARABLES_ATHENA_RESULTS"),
            athena_work_group=os.environ.get("WEARABLES_ATHENA_WORKGROUP"),
            aws_region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        )
    return LakeResource(url=dg.EnvVar(settings.LAKE_URL_ENV))


def ensure_local_environment() -> None:
    """Fill in the local defaults for variables the definitions read with ``EnvVar``.

    Called by the CLI and the Makefile entry points (not at import time) so that a user who
    sets their own DSN or lake URL is never overridden.
    """
    os.environ.setdefault(settings.TIMESCALE_DSN_ENV, settings.timescale_dsn())
    os.environ.setdefault(settings.LAKE_URL_ENV, settings.lake_url())
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home()))
