"""The automation sensor that makes rollups follow their upstream partitions.

Declaring ``automation_condition`` on an asset makes Dagster create a
``default_automation_condition_sensor``, but STOPPED: on open-source Dagster nothing would
happen until someone switched it on in the UI. This sensor replaces it, RUNNING by default.

It ticks every 5 minutes, not Dagster's default 30 s. Each tick while participant-days are being
loaded re-reads the partition status of every rollup over the whole partition space (dates since
``WEARABLES_PARTITION_START`` x participants): with 1,000 participants (~700,000 partitions per
asset) that was ~4.5 core-seconds per tick, 15% of a core for the whole of the daily tick on a
2-core machine (profiled in ``benchmarks/backfill_throughput.py --modes tick``). The rollups the
schedule's runs need are computed in those runs; this sensor only catches what changed outside
them (late syncs pulled by another run, source-only backfills, cohort weeks, maintenance), for
which five minutes is soon enough.
"""

from __future__ import annotations

import dagster as dg

#: Seconds between the automation sensor's ticks (module docstring: why not 30).
AUTOMATION_INTERVAL_S = 300

rollups_automation = dg.AutomationConditionSensorDefinition(
    "rollups_automation",
    target=dg.AssetSelection.groups("rollups"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_S,
    description="Re-runs rollup partitions whose upstream participant-days were re-materialised "
    "(late syncs, backfills of past days), and timescale_maintenance after them; see "
    "wearable_assets/rollups/automation.py and maintenance_assets.py.",
)
