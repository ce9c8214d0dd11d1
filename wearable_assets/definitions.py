"""The Dagster code location: every domain's definitions, merged, plus the shared resources.

Each domain folder exposes its own ``definitions.defs`` (assets, checks, schedules, sensors
and domain resources); this module only assembles them, so reading it lists the whole project.
Domains are imported as modules because Dagster allows one ``Definitions`` object per module.

Before anything else it answers a ``dagster asset materialize`` that cannot work (no
``DAGSTER_HOME``, participant not synced) with one line (``orchestration.shell_checks``), and it
silences Dagster's beta/preview notices for features the project uses on purpose (backfill
policies, partitioned checks): one per definition, they buried the run's own output.
"""

import warnings

import dagster as dg

from wearable_assets.orchestration.shell_checks import refuse_unusable_materialize

refuse_unusable_materialize()
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from wearable_assets.actigraph import definitions as actigraph
from wearable_assets.compliance import definitions as compliance
from wearable_assets.external import ALL as EXTERNAL_SOURCES
from wearable_assets.fitbit import definitions as fitbit
from wearable_assets.orchestration import definitions as orchestration
from wearable_assets.participants import definitions as participants
from wearable_assets.resources import aws_resources, lake_resource, timescale_resource
from wearable_assets.rollups import definitions as rollups

defs = dg.Definitions.merge(
    dg.Definitions(resources={"timescale": timescale_resource(), "lake": lake_resource(), **aws_resources()},
                   assets=EXTERNAL_SOURCES),
    participants.defs,
    fitbit.defs,
    actigraph.defs,
    rollups.defs,
    compliance.defs,
    orchestration.defs,
)
