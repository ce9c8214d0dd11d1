"""Render the code location's asset graph as stable, diffable JSON (the snapshot test's subject).

Everything a reviewer should notice when it changes: asset keys, groups, kinds, partitions,
backfill and retry policies, dependencies, owners, automation, pools, every asset check, the
schedules, sensors, jobs and resource keys. Values that depend on the environment (partition
start, schedule cron) are rendered as loaded, so the test loads the definitions in a subprocess
whose environment holds only the project's defaults.

``python -m wearable_assets_tests.defs_snapshot`` prints the rendering.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import dagster as dg


def describe_partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    """One line per definition, built from its fields (``str()`` is prose that Dagster may reword)."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        dims = ", ".join(f"{d.name}={describe_partitions(d.partitions_def)}" for d in partitions_def.partitions_defs)
        return f"multi({dims})"
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        end = f" until {partitions_def.end.isoformat()}" if partitions_def.end else ""
        return (
            f"time_window(cron '{partitions_def.cron_schedule}' {partitions_def.timezone}, "
            f"from {partitions_def.start.date().isoformat()}{end}, fmt {partitions_def.fmt}, "
            f"end_offset {partitions_def.end_offset})"
        )
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic('{partitions_def.name}')"
    if isinstance(partitions_def, dg.StaticPartitionsDefinition):
        return f"static({', '.join(partitions_def.get_partition_keys())})"
    return f"{type(partitions_def).__name__}({partitions_def})"


def describe_backfill_policy(policy: dg.BackfillPolicy | None) -> Any:
    if policy is None:
        return None
    return {"type": policy.policy_type.value, "max_partitions_per_run": policy.max_partitions_per_run}


def describe_retry_policy(policy: dg.RetryPolicy | None) -> Any:
    if policy is None:
        return None
    return {
        "max_retries": policy.max_retries,
        "delay": policy.delay,
        "backoff": policy.backoff.value if policy.backoff else None,
        "jitter": policy.jitter.value if policy.jitter else None,
    }


def _status(status: Any) -> str | None:
    return status.value if status is not None else None


def render(defs: dg.Definitions) -> dict[str, Any]:
    """The whole code location, keyed and sorted so that equal graphs render to equal text."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    ops_by_key = {key: ad for ad in repo.assets_defs_by_key.values() for key in ad.keys}

    assets: dict[str, Any] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets_def = ops_by_key.get(key)
        op = assets_def.op if assets_def is not None and assets_def.is_executable else None
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": describe_partitions(node.partitions_def),
            "backfill_policy": describe_backfill_policy(node.backfill_policy),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "owners": sorted(node.owners),
            "automation_condition": condition is not None,
            "automation_condition_label": condition.get_label() if condition is not None else None,
            "materializable": node.is_materializable,
            "pool": op.pool if op is not None else None,
            "retry_policy": describe_retry_policy(op.retry_policy if op is not None else None),
        }

    checks: dict[str, Any] = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        node = graph.get(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "name": check_key.name,
            "asset": check_key.asset_key.to_user_string(),
            "blocking": node.blocking,
            "partitioned": node.partitions_def is not None,
            "partitions": describe_partitions(node.partitions_def),
            "additional_deps": sorted(
                k.to_user_string() for k in node.parent_entity_keys
                if isinstance(k, dg.AssetKey) and k != check_key.asset_key
            ),
        }

    schedules = {
        s.name: {
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "job": s.job_name,
            "default_status": _status(s.default_status),
        }
        for s in sorted(repo.schedule_defs, key=lambda s: s.name)
    }

    sensors: dict[str, Any] = {}
    for s in sorted(repo.sensor_defs, key=lambda s: s.name):
        selection = s.asset_selection
        sensors[s.name] = {
            "type": type(s).__name__,
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "default_status": _status(s.default_status),
            "jobs": sorted(t.job_name for t in s.targets),
            "asset_selection": str(selection) if selection is not None else None,
        }

    jobs: dict[str, Any] = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job: every asset, nothing to review
            continue
        jobs[job.name] = {
            "partitions": describe_partitions(job.partitions_def),
            "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "ops": sorted(job.graph.node_names()),
            "executor": job.executor_def.name,
            "op_retry_policy": describe_retry_policy(job.op_retry_policy),
            "tags": dict(sorted(job.tags.items())),
        }

    return {
        "assets": assets,
        "asset_checks": checks,
        "schedules": schedules,
        "sensors": sensors,
        "jobs": jobs,
        "resources": sorted(defs.resources or {}),
    }


def dumps(rendering: dict[str, Any]) -> str:
    return json.dumps(rendering, indent=2, sort_keys=True) + "\n"


def main() -> None:
    # Dagster flags beta features once per definition; they are noise in a rendering.
    warnings.simplefilter("ignore")
    from wearable_assets.definitions import defs

    print(dumps(render(defs)), end="")


if __name__ == "__main__":
    main()
