"""The shared resources every domain uses: TimescaleDB, the lake, and on AWS the S3/Athena clients.

Domain-specific resources (OAuth clients, dlt sources) live in their domain's ``resources.py``.
Values come from the environment (``EnvVar``) so that secrets never enter code or Dagster config;
the Makefile and CLI set the local defaults from ``settings``.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from wearable_assets import settings
from wearable_assets.storage.resources import LakeResource, TimescaleResource

#: Seconds between Athena status polls (dagster-aws's default, 5 s, adds ~5 s to every short query).
ATHENA_POLLING_INTERVAL = 1


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


def aws_resources() -> dict[str, Any]:
    """dagster-aws's clients for the Athena destination, none otherwise.

    ``s3`` (``S3Resource``): the bucket holding the raw landing and the lake files, for code that
    lists or reads them (the lake check lists each participant-day's objects). ``athena``
    (``AthenaClientResource``): queries that read the lake's tables back (``lake_checks``); its
    workgroup (``WEARABLES_ATHENA_WORKGROUP``, default ``primary``) must have a query result
    location, because dagster-aws reads results from there. No field holds a secret: both use
    boto's default credential chain (environment, profile, task or instance role); the region
    comes from ``AWS_DEFAULT_REGION``/``AWS_REGION`` and ``AWS_ENDPOINT_URL`` (moto in tests)
    reaches both clients through botocore. dagster_aws (and boto3) is imported here only, and only
    for Athena: the local default never loads it.
    """
    if os.environ.get("WEARABLES_LAKE_DESTINATION", "filesystem") != "athena":
        return {}
    from dagster_aws.athena import AthenaClientResource
    from dagster_aws.s3 import S3Resource

    return {
        "s3": S3Resource(region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                         endpoint_url=os.environ.get("AWS_ENDPOINT_URL")),
        "athena": AthenaClientResource(workgroup=os.environ.get("WEARABLES_ATHENA_WORKGROUP") or "primary",
                                       polling_interval=ATHENA_POLLING_INTERVAL),
    }


def ensure_local_environment() -> None:
    """Fill in the local defaults for variables the definitions read with ``EnvVar``.

    Called by the CLI and the Makefile entry points (not at import time) so that a user who
    sets their own DSN or lake URL is never overridden.
    """
    os.environ.setdefault(settings.TIMESCALE_DSN_ENV, settings.timescale_dsn())
    os.environ.setdefault(settings.LAKE_URL_ENV, settings.lake_url())
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home()))
