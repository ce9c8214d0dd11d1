"""Dagster objects of the rollups domain: the three rollup assets and the data-quality checks."""

import dagster as dg

from wearable_assets.rollups.assets import cohort_week, intraday_hourly, participant_day_summary
from wearable_assets.rollups.checks import ALL_CHECKS

defs = dg.Definitions(
    assets=[intraday_hourly, participant_day_summary, cohort_week],
    asset_checks=ALL_CHECKS,
)
