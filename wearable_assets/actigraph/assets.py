"""ActiGraph CentrePoint assets, per participant-day (partitions ``date`` x ``participant``).

``actigraph/daily_statistics_parquet`` calls the API (one request series per participant and
run, however many days the run covers), keeps each local day's records exactly as received
(``raw/centrepoint``) and writes that day's typed rows to the lake through
``Lake.write_partition`` (replace-the-day on plain parquet / Athena, Iceberg merge when
configured), so re-materialising a day never duplicates it.

``actigraph/daily_statistics`` loads the same rows into TimescaleDB from the landed records,
replacing the participant-day in one transaction together with its ``ingest_status`` row.

The requests of a run go out ``FETCH_THREADS`` participants at a time (``Prefetched``); what
is done with the answers stays one participant after another. The work is in ``ingest.py``;
each participant-day's outcome is recorded on its own partition
(``wearable_assets.outcomes``), and one participant's failure never stops the others.

Recomputed days are picked up by re-materialising the trailing partitions (the project's daily
schedule re-pulls a window of days), not by writing other days from this run: Dagster then
knows those days changed, and the rollups that depend on them run again.
"""


from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import requests

from wearable_assets.actigraph import ingest
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.actigraph.source import Fetch
from wearable_assets.external import CENTREPOINT_API, OWNERS, ROSTER
from wearable_assets.orchestration.parallel import in_parallel
from wearable_assets.orchestration.retries import RETRY_POLICY, transient_database_errors
from wearable_assets.outcomes import PartitionOutcome, outcome_check_spec, report
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.partitions import participant_day_backfill_policy, participant_day_partitions, partition_days
from wearable_assets.roster import Participant
from wearable_assets.storage.resources import LakeResource, TimescaleResource

POOL = "centrepoint_api"
PARQUET_KEY = dg.AssetKey(["actigraph", "daily_statistics_parquet"])
DB_KEY = dg.AssetKey(["actigraph", "daily_statistics"])
_BACKFILL = participant_day_backfill_policy
#: Participants whose request series are in flight at once (a series is a token request and a
#: page or two). However many there are, the process-wide limiter of ``source.py`` keeps the
#: step within CentrePoint's 500 requests/min per IP (sliding window), and the ``centrepoint_api``
#: pool (one step at a time) keeps the machine within it.
FETCH_THREADS = 4


class Prefetched:
    """The CentrePoint client ``ingest.fetch_and_land`` is given, with its request series already
    sent: ``fetch`` (on a worker thread) sends what ``fetch_and_land`` would ask for and keeps the
    answer or the error; ``fetch_daily_statistics`` then hands it over (or raises it), so the
    participant's outcome is exactly what a sequential request would have given. A request it
    did not prefetch goes to the API as usual."""

    def __init__(self, centrepoint: CentrePointResource) -> None:
        self.centrepoint = centrepoint
        self._answers: dict[tuple[int, int, date, date], Fetch | requests.RequestException] = {}

    def fetch(self, participant: Participant, days: list[date]) -> None:
        assert participant.centrepoint_study_id and participant.centrepoint_subject_id
        # The same margin as ingest.fetch_and_land: one day each side of the participant's days.
        request = (int(participant.centrepoint_study_id), int(participant.centrepoint_subject_id),
                   min(days) - timedelta(days=1), max(days) + timedelta(days=1))
        try:
            self._answers[request] = self.centrepoint.fetch_daily_statistics(*request)
        except requests.RequestException as exc:
            self._answers[request] = exc

    def fetch_daily_statistics(self, study_id: int, subject_id: int, from_date: date, to_date: date) -> Fetch:
        answer = self._answers.pop((study_id, subject_id, from_date, to_date), None)
        if answer is None:
            return self.centrepoint.fetch_daily_statistics(study_id, subject_id, from_date, to_date)
        if isinstance(answer, requests.RequestException):
            raise answer
        return answer


def _skipped(participant_id: str, day: date, reason: str) -> PartitionOutcome:
    return PartitionOutcome(ParticipantDay(day, participant_id).key, "skipped", reason)


@dg.asset(
    owners=OWNERS,
    key=PARQUET_KEY,
    group_name="actigraph",
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    backfill_policy=_BACKFILL,
    pool=POOL,
    kinds={"dlt", "parquet"},
    deps=[CENTREPOINT_API, ROSTER],
    check_specs=[outcome_check_spec(PARQUET_KEY, "fetched from CentrePoint and landed")],
    description="CentrePoint daily statistics per participant-day in the parquet lake (Athena table "
    "actigraph_daily_statistics); each day's API records are kept as received under raw/centrepoint.",
)
def daily_statistics_parquet(
    context: dg.AssetExecutionContext,
    centrepoint: CentrePointResource,
    lake: LakeResource,
    timescale: TimescaleResource,
) -> Any:
    with transient_database_errors():
        fetched_at = datetime.now(timezone.utc)
        days = partition_days(context)
        participants = participant_store.load(timescale, sorted({d.participant_id for d in days}))
        outcomes: list[PartitionOutcome] = []
        due_by_participant: dict[str, list[date]] = {}
        for pday in days:  # sorted by day, so each participant's due days are in order
            reason = ingest.skip_reason(participants.get(pday.participant_id), pday.day)
            if reason is None:
                due_by_participant.setdefault(pday.participant_id, []).append(pday.day)
            else:
                outcomes.append(_skipped(pday.participant_id, pday.day, reason))
        # The requests go out FETCH_THREADS participants at a time; landing and the lake writes
        # stay on the step's thread, one participant after another, as before.
        prefetched = Prefetched(centrepoint)
        in_parallel(lambda pid: prefetched.fetch(participants[pid], due_by_participant[pid]),
                    list(due_by_participant), FETCH_THREADS)
        for participant_id, due in due_by_participant.items():
            outcomes.extend(ingest.fetch_and_land(prefetched, lake, timescale, participants[participant_id], due,
                                                  fetched_at))
        yield from report(context, outcomes)


@dg.asset(
    owners=OWNERS,
    key=DB_KEY,
    deps=[daily_statistics_parquet],
    group_name="actigraph",
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    backfill_policy=_BACKFILL,
    kinds={"timescaledb"},
    check_specs=[outcome_check_spec(DB_KEY, "loaded into TimescaleDB")],
    description="CentrePoint daily statistics in wearables.actigraph_daily_statistics (one row per participant, "
    "local day and setting), loaded from the records landed upstream, with the participant-day's status row.",
)
def daily_statistics(context: dg.AssetExecutionContext, lake: LakeResource, timescale: TimescaleResource) -> Any:
    with transient_database_errors():
        loaded_at = datetime.now(timezone.utc)
        days = partition_days(context)
        participants = participant_store.load(timescale, sorted({d.participant_id for d in days}))
        outcomes: list[PartitionOutcome] = []
        for pday in days:
            participant = participants.get(pday.participant_id)
            reason = ingest.skip_reason(participant, pday.day)
            if reason is not None:
                outcomes.append(_skipped(pday.participant_id, pday.day, reason))
                continue
            assert participant is not None
            outcomes.append(ingest.load_day(lake, timescale, participant, pday.day, loaded_at))
        yield from report(context, outcomes)
