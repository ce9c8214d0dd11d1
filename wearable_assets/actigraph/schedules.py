"""When ActiGraph data is pulled: every morning, the trailing window of each subject's local days.

CentrePoint recomputes a day when a later upload adds data to it, so one pull per day is not
enough. Each morning the schedule asks for the last ``trailing_days`` complete *local* days of
every CentrePoint participant (default 3; ``[sources.centrepoint] trailing_days`` in
``.dlt/config.toml`` or ``SOURCES__CENTREPOINT__TRAILING_DAYS``), as one ranged run per
participant: one API request series covers the whole window, and every day in it is
re-materialised, so the rollups downstream see the change.
"""


from datetime import date, datetime, timedelta, timezone

import dagster as dg
import dlt

from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, daily_partitions, participant_day_partitions
from wearable_assets.roster import Participant
from wearable_assets.storage.timescale import TimescaleResource

DEFAULT_TRAILING_DAYS = 3
_RANGE_START = "dagster/asset_partition_range_start"
_RANGE_END = "dagster/asset_partition_range_end"

actigraph_job = dg.define_asset_job(
    "actigraph_daily_statistics_job",
    selection=dg.AssetSelection.groups("actigraph"),
    partitions_def=participant_day_partitions,
)


def trailing_days() -> int:
    value = dlt.config.get("sources.centrepoint.trailing_days", int)
    days = int(value) if value is not None else DEFAULT_TRAILING_DAYS
    if days < 1:
        raise ValueError(f"sources.centrepoint.trailing_days must be at least 1, not {days}")
    return days


def trailing_window(participant: Participant, now: datetime, days: int, last_partition: date) -> tuple[date, date] | None:
    """The last ``days`` complete local days of ``participant`` at ``now``, clipped to their
    enrolment and to the partitions that exist; None when nothing is left."""
    yesterday = now.astimezone(participant.tz).date() - timedelta(days=1)
    last = min(yesterday, last_partition, participant.enrolled_to or yesterday)
    first = max(yesterday - timedelta(days=days - 1), participant.enrolled_from)
    return (first, last) if first <= last else None


def centrepoint_participants(timescale: TimescaleResource) -> list[Participant]:
    rows = timescale.fetch(
        "SELECT participant_id, study_id, time_zone, enrolled_from, enrolled_to, fitbit_provider, fitbit_user_id, "
        "centrepoint_study_id, centrepoint_subject_id FROM wearables.participants "
        "WHERE in_roster AND centrepoint_subject_id IS NOT NULL ORDER BY participant_id"
    )
    return [Participant(*row) for row in rows]


@dg.schedule(job=actigraph_job, cron_schedule="0 6 * * *", execution_timezone="UTC")
def actigraph_trailing_window(
    context: dg.ScheduleEvaluationContext, timescale: TimescaleResource
) -> dg.SkipReason | list[dg.RunRequest]:
    now = context.scheduled_execution_time or datetime.now(timezone.utc)
    with dg.partition_loading_context(effective_dt=now):
        last_key = daily_partitions.get_last_partition_key()
    if last_key is None:
        return dg.SkipReason("no daily partition exists yet")
    known = set(context.instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME))
    days = trailing_days()
    requests = []
    for participant in centrepoint_participants(timescale):
        window = trailing_window(participant, now, days, date.fromisoformat(last_key))
        if window is None or participant.participant_id not in known:
            continue
        first, last = window
        pid = participant.participant_id
        requests.append(dg.RunRequest(
            run_key=f"{now.date().isoformat()}:{pid}",
            tags={_RANGE_START: f"{first.isoformat()}|{pid}", _RANGE_END: f"{last.isoformat()}|{pid}"},
        ))
    return requests or dg.SkipReason("no CentrePoint participant has a complete day to pull")
