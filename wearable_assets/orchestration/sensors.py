"""The automation sensor that makes rollups follow their upstream partitions.

Declaring ``automation_condition`` on an asset makes Dagster create a
``default_automation_condition_sensor``, but STOPPED: on open-source Dagster nothing would
happen until someone switched it on in the UI. This sensor replaces it, RUNNING by default.
"""

from __future__ import annotations

import dagster as dg

rollups_automation = dg.AutomationConditionSensorDefinition(
    "rollups_automation",
    target=dg.AssetSelection.groups("rollups"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Re-runs rollup partitions whose upstream participant-days were re-materialised "
    "(late syncs, backfills of past days), and timescale_maintenance after them; see "
    "wearable_assets/rollups/automation.py and maintenance_assets.py.",
)
