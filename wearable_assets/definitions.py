"""The Dagster code location: every domain's definitions, merged, plus the shared resources.

Each domain folder exposes its own ``definitions.defs`` (assets, checks, schedules, sensors
and domain resources); this module only assembles them, so reading it lists the whole project.
Domains are imported as modules because Dagster allows one ``Definitions`` object per module.
"""

import dagster as dg

from wearable_assets.actigraph import definitions as actigraph
from wearable_assets.compliance import definitions as compliance
from wearable_assets.fitbit import definitions as fitbit
from wearable_assets.orchestration import definitions as orchestration
from wearable_assets.participants import definitions as participants
from wearable_assets.resources import lake_resource, timescale_resource
from wearable_assets.rollups import definitions as rollups

defs = dg.Definitions.merge(
    dg.Definitions(resources={"timescale": timescale_resource(), "lake": lake_resource()}),
    participants.defs,
    fitbit.defs,
    actigraph.defs,
    rollups.defs,
    compliance.defs,
    orchestration.defs,
)
