"""Dagster objects of the rollups domain: the three rollup assets, the data-quality checks, and the
TimescaleDB maintenance with its job-health check."""

import dagster as dg

from wearable_assets.rollups.assets import cohort_week, intraday_hourly, participant_day_summary
from wearable_assets.rollups.checks import ALL_CHECKS
from wearable_assets.rollups.maintenance_assets import timescale_jobs_healthy, timescale_maintenance

defs = dg.Definitions(
    assets=[intraday_hourly, participant_day_summary, cohort_week, timescale_maintenance],
    asset_checks=[*ALL_CHECKS, timescale_jobs_healthy],
)
