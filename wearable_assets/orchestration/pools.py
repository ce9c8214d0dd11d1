"""Concurrency pools: how many steps may use each provider API (or shared state) at once.

Pools are named on the assets (``pool="google_health_api"``); their limits live in the Dagster
instance's storage, not in ``dagster.yaml`` (which only holds ``pools.default_limit``), so they
are applied here, once per instance — ``python -m wearable_assets.orchestration.pools`` — or
with ``dagster instance concurrency set <pool> <limit>`` / the UI's Concurrency page.

Why these numbers (the providers' *rate* limits are enforced by the API clients themselves, with
process-wide sliding-window limiters; pools bound how many clients run at once, which is what
turns a process's limit into the instance's):

* ``google_health_api`` — 300 requests/min **per user**: steps for different participants do not
  share a budget, so several may run; 4 keeps a 2-core machine busy without thrashing. The
  project's 120,000 requests/min are shared by every step: each step's process gets the quota
  divided by this pool's limit (``fitbit/raw_payloads`` reads the limit from the instance when
  the step starts, with ``pool_slots``; ``GoogleHealthResource.project_budget`` divides), so the
  steps together stay within it.
* ``centrepoint_api`` — 500 requests/min **per IP**, shared by every step on the machine: one
  step at a time, and that step's process-wide limiter (``actigraph/source.py``, 500 per 60 s
  sliding window, token requests included) holds all the traffic to it. Raising this limit
  would let several steps each spend the whole budget.
* ``dlt`` — for any dlt pipeline with a fixed name and working directory (pipeline state is not
  safe to share, dagster#21022). The project's lake writes use a private working directory per
  write and do not need it.
"""

from __future__ import annotations

import dagster as dg

GOOGLE_HEALTH_POOL = "google_health_api"
CENTREPOINT_POOL = "centrepoint_api"
POOL_LIMITS: dict[str, int] = {
    GOOGLE_HEALTH_POOL: 4,
    CENTREPOINT_POOL: 1,
    "dlt": 1,
}


def pool_slots(instance: dg.DagsterInstance, pool: str) -> int:
    """The pool's limit as the instance holds it (an operator may have changed it), or the
    project's own (``POOL_LIMITS``) when the instance has none or keeps no pools."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        slots = storage.get_concurrency_info(pool).slot_count
        if slots > 0:
            return slots
    return POOL_LIMITS[pool]


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
