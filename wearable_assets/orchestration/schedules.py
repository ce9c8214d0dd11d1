"""The daily schedule: yesterday for every active participant, plus a trailing re-pull window.

"Yesterday" is the participant's own: the local day before the tick's local day, the last one
that is over. The default tick, 09:00 UTC, is the hour at which every zone from UTC-9 (Alaska)
to UTC+14 is in the same calendar day, so every participant there has the same yesterday and the
same due days, and the tick packs into whole rectangles: for 1,000 participants in New York,
London, Brisbane, Tokyo and Los Angeles, 84 runs of 48 participant-days at 09:00 UTC, against
463 runs (400 of them of 2 or 3 participant-days, each paying a run's start-up) at 03:00 UTC,
when New York and Los Angeles are still in the day before. At 09:00 UTC Los Angeles' day ended
an hour ago, so its last hours may not be synced yet: the re-pull window fetches them again.
Zones west of UTC-9 (Hawaii) are a day behind then; they get their own, smaller runs. The trailing window (default
3 days before yesterday) re-pulls late syncs and provider restatements; re-runs replace the
participant-day, so nothing is duplicated. Enrolment windows are respected, and only
participants that the roster sensor has already added to the partitions are scheduled.

The participant-days are packed into as few ranged runs as Dagster allows. A ranged run covers a
rectangle: a date range x a *contiguous* participant range in the partitions' insertion order,
so participants not due (not enrolled, unknown) split rectangles; ``plan_ranges`` finds maximal
rectangles and cuts them to at most ``max_partitions_per_run`` participant-days each.
"""


from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg

from wearable_assets import settings
from wearable_assets.orchestration.jobs import participant_day_job
from wearable_assets.participants import store as participant_store
from wearable_assets.partitions import PARTICIPANT_DAYS_PER_RUN, PARTICIPANTS_PARTITION_NAME, daily_partitions
from wearable_assets.roster import Participant
from wearable_assets.storage.resources import TimescaleResource

DEFAULT_CRON = "0 9 * * *"  # module docstring: why 09:00 UTC
DEFAULT_TIMEZONE = "UTC"
DEFAULT_REPULL_DAYS = 3
DEFAULT_MAX_PARTITIONS_PER_RUN = PARTICIPANT_DAYS_PER_RUN  # the assets' backfill policy too
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
#: What a run covers, readable in the runs list: "2026-11-28..2026-11-30 x P001..P040 (120)".
PARTICIPANT_DAYS_TAG = "wearables/participant_days"


def due_days(
    participant: Participant, now: datetime, repull_days: int, first_partition: date, last_partition: date
) -> list[date]:
    """The participant's local yesterday and the ``repull_days`` before it, clipped to their
    enrolment and to the days that exist as partitions."""
    yesterday = now.astimezone(ZoneInfo(participant.time_zone)).date() - timedelta(days=1)
    first = max(yesterday - timedelta(days=repull_days), participant.enrolled_from, first_partition)
    last = min(yesterday, participant.enrolled_to or yesterday, last_partition)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class KeyRange:
    """A rectangle of participant-days: ``first_day..last_day`` x partitions ``first..last``."""

    first_day: date
    last_day: date
    participants: tuple[str, ...]  # contiguous in the partitions' order

    @property
    def size(self) -> int:
        return ((self.last_day - self.first_day).days + 1) * len(self.participants)

    @property
    def start_key(self) -> str:
        return f"{self.first_day.isoformat()}|{self.participants[0]}"

    @property
    def end_key(self) -> str:
        return f"{self.last_day.isoformat()}|{self.participants[-1]}"

    @property
    def label(self) -> str:
        """``2026-11-28..2026-11-30 x P001..P040 (120)``: the dates, the participant range and the
        number of participant-days, for people (the range tags are Dagster's keys)."""
        days = self.first_day.isoformat() + (f"..{self.last_day.isoformat()}" if self.last_day != self.first_day else "")
        people = self.participants[0] + (f"..{self.participants[-1]}" if len(self.participants) > 1 else "")
        return f"{days} x {people} ({self.size})"

    def tags(self) -> dict[str, str]:
        return {RANGE_START: self.start_key, RANGE_END: self.end_key, PARTICIPANT_DAYS_TAG: self.label}


def _runs(indices: Sequence[int]) -> Iterable[tuple[int, int]]:
    """Maximal runs of consecutive integers in sorted ``indices`` as (first, last)."""
    start = prev = indices[0]
    for i in indices[1:]:
        if i != prev + 1:
            yield start, prev
            start = i
        prev = i
    yield start, prev


def plan_ranges(wanted: dict[str, list[date]], order: Sequence[str], max_partitions_per_run: int) -> list[KeyRange]:
    """Cover exactly the wanted participant-days with few rectangles of bounded size.

    ``order`` is the partitions' participant order (the order ranges are interpreted in);
    participants missing from it are ignored. Per day, consecutive wanted participants form a
    segment; identical segments on consecutive days merge into one rectangle, which is then cut
    along participants (and, if one participant alone exceeds the limit, along days).
    """
    position = {pid: i for i, pid in enumerate(order)}
    by_day: dict[date, list[int]] = defaultdict(list)
    for pid, days in wanted.items():
        if pid in position:
            for day in days:
                by_day[day].append(position[pid])
    days_by_segment: dict[tuple[int, int], list[date]] = defaultdict(list)
    for day in sorted(by_day):
        for segment in _runs(sorted(set(by_day[day]))):
            days_by_segment[segment].append(day)
    ranges: list[KeyRange] = []
    for (lo, hi), days in sorted(days_by_segment.items(), key=lambda item: (item[1][0], item[0])):
        for first, last in _runs([d.toordinal() for d in days]):
            span = last - first + 1
            day_step = min(span, max_partitions_per_run)
            participant_step = max(1, max_partitions_per_run // day_step)
            for d0 in range(first, last + 1, day_step):
                d1 = min(d0 + day_step - 1, last)
                for p0 in range(lo, hi + 1, participant_step):
                    p1 = min(p0 + participant_step - 1, hi)
                    ranges.append(KeyRange(date.fromordinal(d0), date.fromordinal(d1), tuple(order[p0:p1 + 1])))
    return ranges


def plan_daily_runs(
    participants: Sequence[Participant], order: Sequence[str], now: datetime, *,
    repull_days: int, max_partitions_per_run: int,
) -> list[KeyRange]:
    with dg.partition_loading_context(effective_dt=now):
        last_key = daily_partitions.get_last_partition_key()
    if last_key is None:
        return []
    first_partition = date.fromisoformat(settings.partition_start())
    wanted = {
        p.participant_id: due_days(p, now, repull_days, first_partition, date.fromisoformat(last_key))
        for p in participants
    }
    return plan_ranges(wanted, order, max_partitions_per_run)


@dg.schedule(
    name="daily_participant_days",
    job=participant_day_job,
    cron_schedule=settings.text(settings.SCHEDULE_CRON_ENV, DEFAULT_CRON),
    execution_timezone=settings.text(settings.SCHEDULE_TIMEZONE_ENV, DEFAULT_TIMEZONE),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Yesterday (each participant's local day) and the trailing re-pull window for every enrolled "
    f"participant, in ranged runs. ${settings.SCHEDULE_CRON_ENV} / ${settings.SCHEDULE_TIMEZONE_ENV} set when; "
    f"${settings.REPULL_DAYS_ENV} the window "
    f"(default {DEFAULT_REPULL_DAYS}); ${settings.SCHEDULE_BATCH_ENV} the participant-days per run (default "
    f"{DEFAULT_MAX_PARTITIONS_PER_RUN}).",
)
def daily_participant_days(
    context: dg.ScheduleEvaluationContext, timescale: TimescaleResource
) -> list[dg.RunRequest] | dg.SkipReason:
    now = context.scheduled_execution_time or datetime.now(timezone.utc)
    order = context.instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    if not order:
        return dg.SkipReason("no participants in the partitions yet (the roster sensor adds them)")
    ranges = plan_daily_runs(
        participant_store.scheduled(timescale), order, now,
        repull_days=settings.integer(settings.REPULL_DAYS_ENV, DEFAULT_REPULL_DAYS, minimum=0, unit="days"),
        max_partitions_per_run=settings.integer(settings.SCHEDULE_BATCH_ENV, DEFAULT_MAX_PARTITIONS_PER_RUN, minimum=1),
    )
    if not ranges:
        return dg.SkipReason("no enrolled participant has a complete day due")
    tick = now.strftime("%Y-%m-%dT%H:%M")
    return [dg.RunRequest(run_key=f"{tick}:{r.start_key}...{r.end_key}", tags=r.tags()) for r in ranges]
