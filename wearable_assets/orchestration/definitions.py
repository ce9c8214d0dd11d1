"""Dagster objects of the orchestration domain: the daily job and schedule, the automation sensor."""

import dagster as dg

from wearable_assets.orchestration.jobs import participant_day_job
from wearable_assets.orchestration.schedules import daily_participant_days
from wearable_assets.orchestration.sensors import rollups_automation

defs = dg.Definitions(
    jobs=[participant_day_job],
    schedules=[daily_participant_days],
    sensors=[rollups_automation],
)
