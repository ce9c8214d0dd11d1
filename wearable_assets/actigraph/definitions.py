"""Dagster objects of the ActiGraph CentrePoint domain."""

import dagster as dg

from wearable_assets.actigraph.assets import daily_statistics, daily_statistics_parquet
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.actigraph.schedules import actigraph_job, actigraph_trailing_window

defs = dg.Definitions(
    assets=[daily_statistics_parquet, daily_statistics],
    jobs=[actigraph_job],
    schedules=[actigraph_trailing_window],
    resources={"centrepoint": CentrePointResource()},
)
