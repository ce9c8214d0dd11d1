"""Dagster objects of the ActiGraph CentrePoint domain.

Scheduling is not here: the project-wide ``participant_day_job`` and its daily schedule
(``wearable_assets/orchestration``) run these assets for every participant's local yesterday
plus a trailing re-pull window, which is what picks up days CentrePoint recomputes.
"""

import dagster as dg

from wearable_assets.actigraph.assets import daily_statistics, daily_statistics_parquet
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.lake_checks import ACTIGRAPH_LAKE_CHECK

defs = dg.Definitions(
    assets=[daily_statistics_parquet, daily_statistics],
    asset_checks=[ACTIGRAPH_LAKE_CHECK],
    resources={"centrepoint": CentrePointResource()},
)
