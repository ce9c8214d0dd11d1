"""The shared resources every domain uses: TimescaleDB, the lake, and on AWS the S3/Athena clients.

Domain-specific resources (OAuth clients, dlt sources) live in their domain's ``resources.py``.
Both are built when a run starts, in the run's process, from its environment: the operator's
``WEARABLES_TIMESCALE_DSN`` / ``WEARABLES_LAKE_URL`` when set, else the README's defaults (the
project-local server, ``<state>/lake``), so ``dagster asset materialize`` works from a plain shell
as it does under the CLI. Nothing is captured when the code location loads (a DSN with a password
never enters Dagster config or the UI, and tests that point the environment at their own database
and lake get them). Secrets (client secrets, the token key) have no default.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from wearable_assets import settings
from wearable_assets.storage.resources import LakeResource, TimescaleResource

#: Seconds between Athena status polls (dagster-aws's default, 5 s, adds ~5 s to every short query).
ATHENA_POLLING_INTERVAL = 1


def build_timescale() -> TimescaleResource:
    """``WEARABLES_TIMESCALE_DSN``, else the project-local server (``settings.timescale_dsn``)."""
    return TimescaleResource(dsn=settings.timescale_dsn())


def build_lake() -> LakeResource:
    """Local parquet lake unless ``WEARABLES_LAKE_DESTINATION=athena`` (see README, "Athena")."""
    destination = settings.choice(settings.LAKE_DESTINATION_ENV, "filesystem", ("filesystem", "athena"))
    if destination == "athena":
        url, results = settings.optional(settings.LAKE_URL_ENV), settings.optional(settings.ATHENA_RESULTS_ENV)
        if not url or not results:
            raise ValueError(
                f"{settings.LAKE_DESTINATION_ENV}=athena needs {settings.LAKE_URL_ENV}=s3://bucket/prefix and "
                f"{settings.ATHENA_RESULTS_ENV}=s3://bucket/athena-results/ (README, 'The lake')"
            )
        return LakeResource(
            url=url,
            destination="athena",
            table_format=settings.choice(settings.LAKE_TABLE_FORMAT_ENV, "hive", ("hive", "iceberg")),  # type: ignore[arg-type]
            athena_query_result_bucket=results,
            athena_work_group=settings.optional(settings.ATHENA_WORKGROUP_ENV),
            aws_region=settings.optional(settings.AWS_REGION_ENV) or settings.optional(settings.AWS_DEFAULT_REGION_ENV),
            aws_endpoint_url=settings.optional(settings.AWS_ENDPOINT_URL_ENV),
        )
    return LakeResource(url=settings.lake_url())


def timescale_resource() -> dg.ResourceDefinition:
    """The ``timescale`` resource: a ``TimescaleResource`` built at run start (``build_timescale``)."""
    return dg.ResourceDefinition(
        resource_fn=lambda _context: build_timescale(),
        description="TimescaleDB: WEARABLES_TIMESCALE_DSN, else the project-local server (read at run start).",
    )


def lake_resource() -> dg.ResourceDefinition:
    """The ``lake`` resource: a ``LakeResource`` built at run start (``build_lake``)."""
    return dg.ResourceDefinition(
        resource_fn=lambda _context: build_lake(),
        description="Parquet lake: WEARABLES_LAKE_URL, else <state>/lake; S3 + Athena with "
        "WEARABLES_LAKE_DESTINATION=athena (read at run start).",
    )


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
    if settings.text(settings.LAKE_DESTINATION_ENV, "filesystem") != "athena":
        return {}
    from dagster_aws.athena import AthenaClientResource
    from dagster_aws.s3 import S3Resource

    return {
        "s3": S3Resource(region_name=settings.optional(settings.AWS_REGION_ENV)
                         or settings.optional(settings.AWS_DEFAULT_REGION_ENV),
                         endpoint_url=settings.optional(settings.AWS_ENDPOINT_URL_ENV)),
        "athena": AthenaClientResource(workgroup=settings.text(settings.ATHENA_WORKGROUP_ENV, "primary"),
                                       polling_interval=ATHENA_POLLING_INTERVAL),
    }


def ensure_local_environment() -> None:
    """Give the CLI's commands (and what they start) the project's ``DAGSTER_HOME``.

    Called by the CLI (not at import time) so that a user who sets their own is never overridden.
    The DSN and the lake need nothing here: the resources above and ``settings`` fall back to
    the same local defaults in every process. An empty ``DAGSTER_HOME`` counts as unset.
    """
    if not settings.is_set(settings.DAGSTER_HOME_ENV):
        os.environ[settings.DAGSTER_HOME_ENV] = str(settings.dagster_home())
