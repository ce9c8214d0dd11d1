"""Concurrency pools: how many steps may use each provider API (or shared state) at once.

Pools are named on the assets (``pool="google_health_api"``); their limits live in the Dagster
instance's storage, not in ``dagster.yaml`` (which only holds ``pools.default_limit``), so they
are applied here, once per instance — ``python -m wearable_assets.orchestration.pools`` — or
with ``dagster instance concurrency set <pool> <limit>`` / the UI's Concurrency page.

Why these numbers (the providers' *rate* limits are enforced by the API clients themselves;
pools bound how many clients run at once):

* ``google_health_api`` — 300 requests/min **per user**: steps for different participants do not
  share a budget, so several may run; 4 keeps a 2-core machine busy without thrashing.
* ``centrepoint_api`` — 500 requests/min **per IP**, shared by every step on the machine: one
  client at a time, so its limiter sees all the traffic.
* ``dlt`` — for any dlt pipeline with a fixed name and working directory (pipeline state is not
  safe to share, dagster#21022). The project's lake writes use a private working directory per
  write and do not need it.
"""

from __future__ import annotations

import dagster as dg

POOL_LIMITS: dict[str, int] = {
    "google_health_api": 4,
    "centrepoint_api": 1,
    "dlt": 1,
}


def apply_pool_limits(
    instance: dg.DagsterInstance, limits: dict[str, int] | None = None, *, overwrite: bool = False
) -> dict[str, int]:
    """Set the limits of pools that have none yet (or all of them with ``overwrite``), so a
    limit an operator changed in the UI is kept. Returns what was set."""
    wanted = POOL_LIMITS if limits is None else limits
    storage = instance.event_log_storage
    configured = set(storage.get_concurrency_keys())
    applied = {}
    for pool, limit in wanted.items():
        if overwrite or pool not in configured:
            storage.set_concurrency_slots(pool, limit)
            applied[pool] = limit
    return applied


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        applied = apply_pool_limits(instance)
        for pool in sorted(POOL_LIMITS):
            info = instance.event_log_storage.get_concurrency_info(pool)
            note = "set now" if pool in applied else "kept"
            print(f"{pool}: {info.slot_count} slots ({note})")


if __name__ == "__main__":
    main()
