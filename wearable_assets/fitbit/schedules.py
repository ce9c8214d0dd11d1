"""The daily Fitbit pull: yesterday and the two days before, for every participant.

Why three days: devices sync late (hours to days) and the provider restates data after a sync
(sleep stages are re-processed), so a day is fetched again on the next two mornings; each
re-run replaces the participant-day, so nothing is duplicated. One ranged run per day covers
all participants (the assets loop over ``partition_days``).
"""


from datetime import timedelta

import dagster as dg

from wearable_assets.fitbit.assets import intraday, intraday_parquet, raw_payloads
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, participant_day_partitions

TRAILING_DAYS = 3

fitbit_job = dg.define_asset_job(
    "fitbit_daily",
    selection=dg.AssetSelection.assets(raw_payloads, intraday, intraday_parquet),
    partitions_def=participant_day_partitions,
    description="Fetch, land and load Fitbit participant-days.",
)


@dg.schedule(job=fitbit_job, cron_schedule="0 6 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def fitbit_daily_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    participants = context.instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    if not participants:
        return dg.SkipReason("no participants yet (the roster sensor adds them)")
    today = context.scheduled_execution_time.date()
    requests = []
    for back in range(1, TRAILING_DAYS + 1):
        day = (today - timedelta(days=back)).isoformat()
        requests.append(dg.RunRequest(
            run_key=f"fitbit-{day}-{today.isoformat()}",
            tags={"dagster/asset_partition_range_start": f"{day}|{participants[0]}",
                  "dagster/asset_partition_range_end": f"{day}|{participants[-1]}"},
        ))
    return requests
