"""Dagster objects of the orchestration domain: the daily job and schedule, the automation sensor,
and the executor every job of the code location uses.

Executor: Dagster's default multiprocess executor starts a fresh Python process for every step,
and each one imports the whole code location (dagster, dlt, pyarrow, the domains): measured
8-15 s per step on 2 cores, so a 9-step participant-day run took 1.5 min doing 25 s of work.
Steps here wait on APIs and the database, not on the CPU, so running them one after another in
the run's own process is faster; parallelism comes from several runs at once (dagster.yaml).
"""

import dagster as dg

from wearable_assets.orchestration.jobs import participant_day_job
from wearable_assets.orchestration.schedules import daily_participant_days
from wearable_assets.orchestration.sensors import rollups_automation

defs = dg.Definitions(
    jobs=[participant_day_job],
    schedules=[daily_participant_days],
    sensors=[rollups_automation],
    executor=dg.in_process_executor,
)
