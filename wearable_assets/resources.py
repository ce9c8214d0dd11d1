"""The shared resources every domain uses: TimescaleDB and the lake.

Domain-specific resources (OAuth clients, dlt sources) live in their domain's ``resources.py``.
A value the operator sets comes from the environment (``EnvVar``), so a DSN with a password never
enters code or Dagster config. When it is not set, the README's defaults apply (the project-local
server, the repo's ``.state/lake``), so ``dagster asset materialize`` works from a plain shell as
it does under the CLI; secrets (client secrets, the token key) have no default.
"""

from __future__ import annotations

import os

import dagster as dg

from wearable_assets import settings
from wearable_assets.storage.resources import LakeResource, TimescaleResource


def _from_env_or(name: str, default: str) -> str:
    """``EnvVar(name)`` when the operator set it (read at run time, kept out of the UI), else ``default``.

    Decided when the code location loads; an empty value counts as unset, as in ``settings``.
    """
    return dg.EnvVar(name) if os.environ.get(name) else default  # type: ignore[return-value]


def timescale_resource() -> TimescaleResource:
    """``WEARABLES_TIMESCALE_DSN``, else the project-local server (``settings.local_dsn``, no password)."""
    return TimescaleResource(dsn=_from_env_or(settings.TIMESCALE_DSN_ENV, settings.local_dsn()))


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
    return LakeResource(url=_from_env_or(settings.LAKE_URL_ENV, str(settings.state_dir() / "lake")))


def ensure_local_environment() -> None:
    """Give the CLI's commands (and what they start) the project's ``DAGSTER_HOME``.

    Called by the CLI (not at import time) so that a user who sets their own is never overridden.
    The DSN and the lake need nothing here: the resources above and ``settings`` fall back to
    the same local defaults in every process. An empty ``DAGSTER_HOME`` counts as unset.
    """
    if not os.environ.get("DAGSTER_HOME", "").strip():
        os.environ["DAGSTER_HOME"] = str(settings.dagster_home())
