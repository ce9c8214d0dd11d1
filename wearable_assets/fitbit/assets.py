"""The Fitbit assets: raw payloads -> TimescaleDB, raw payloads -> parquet lake.

All three are partitioned by ``date x participant`` and loop over ``partition_days(context)``, so
a backfill can batch several participant-days per run (``participant_day_backfill_policy``).

Each participant-day is its own outcome (``wearable_assets.outcomes``), also in a ranged run:
``ok``, ``no_data``, ``skipped`` (no Fitbit in the roster, not enrolled), ``needs_reconsent``
(the grant is dead: a person must act) or ``api_error`` (an API failure that survived the
retries, a token endpoint down, a payload that does not parse). Whatever happens to one
participant-day is recorded on its own partition (metadata and the ``participant_day_outcome``
check) and in ``ingest_status``; the others of the run are fetched, loaded and rolled up all the
same (each participant-day is its own transaction). The step never fails for one participant-
day: the failed ones show red on their own partitions and are fetched again by the schedule's
re-pull window or by re-running just those partitions.

``raw_payloads`` fetches ``FETCH_THREADS`` participants at a time (``orchestration.parallel``):
with a remote API most of a participant-day is spent waiting for replies.
"""


from collections.abc import Callable
from typing import Any

import dagster as dg

from wearable_assets.external import FITBIT_WEB_API, GOOGLE_HEALTH_API, OWNERS, ROSTER
from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.fitbit.http import ApiError
from wearable_assets.fitbit.ingest import DayOutcome
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.orchestration.parallel import by_participant, in_parallel
from wearable_assets.orchestration.pools import GOOGLE_HEALTH_POOL, pool_slots
from wearable_assets.orchestration.retries import RETRY_POLICY, transient_database_errors
from wearable_assets.outcomes import PartitionOutcome, outcome_check_spec, report
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.partitions import participant_day_backfill_policy, participant_day_partitions, partition_days
from wearable_assets.storage.lake import Lake
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale

GROUP = "fitbit"
#: The backfill policy every participant-day asset shares (~15-25 API calls per participant-day;
#: the Google Health limiter keeps a run inside 300 calls/min/user whatever its size).
BACKFILL_POLICY = participant_day_backfill_policy
#: Participants fetched at the same time in one run (each participant's days one after another).
#: The per-participant limiter (300 requests/min/user) is process-wide and keyed by participant,
#: so it holds however many threads there are; so does the project's (this step's share of the
#: 120,000/min per project: the quota divided by the ``google_health_api`` pool's limit). Most of
#: a fetch is waiting on the API, which threads overlap: at 150 ms a request, one participant's
#: thread is near its 5 requests/s anyway, so a run's fetch time is its participants divided by
#: this (8: 1.6x faster than 4 in the throughput benchmark at 150 ms; the parsing threads share
#: one core through the GIL, so more gains little).
FETCH_THREADS = 8
RAW_KEY = dg.AssetKey(["fitbit", "raw_payloads"])
INTRADAY_KEY = dg.AssetKey(["fitbit", "intraday"])


def auth_states(timescale: Timescale, participant_ids: list[str]) -> dict[str, str]:
    """``{"P001/google_health": "active", "P003/fitbit_legacy": "needs_reconsent (gone_410)"}``."""
    rows = timescale.fetch(
        "SELECT participant_id, provider, auth_state, reconsent_reason FROM wearables.oauth_tokens "
        "WHERE participant_id = ANY(%s) ORDER BY 1, 2",
        (participant_ids,),
    )
    return {f"{pid}/{provider}": state + (f" ({reason})" if reason else "") for pid, provider, state, reason in rows}


def partition_outcome(outcome: DayOutcome, auth: dict[str, str] | None = None, *,
                      rows: bool = True) -> PartitionOutcome:
    """What one participant-day's partition shows: its own counts only, never the run's. No
    secrets: counts, times, statuses and our own messages. ``rows``: the asset wrote rows (the
    raw asset lands payloads, so its row count would mean nothing)."""
    pday = ParticipantDay.from_key(outcome.key)
    metadata: dict[str, Any] = {"provider": outcome.provider, "api_calls": outcome.api_calls}
    if outcome.provider and auth is not None:
        metadata["auth_state"] = auth.get(f"{pday.participant_id}/{outcome.provider}", "no token stored")
    loaded = outcome.status in ("ok", "no_data")
    if rows and loaded:
        metadata["sleep_stages"] = outcome.sleep_stages
        metadata["sleep_sessions"] = outcome.sleep_sessions
        metadata["rows_per_metric"] = dg.MetadataValue.json(outcome.rows_per_metric)
        metadata["quarantined_values"] = sum(outcome.quarantined.values())
        if outcome.quarantined:
            metadata["quarantined"] = dg.MetadataValue.json(outcome.quarantined)
    if outcome.hr_completeness_pct is not None:
        metadata["hr_completeness_pct"] = outcome.hr_completeness_pct
    if outcome.time_range:
        metadata["time_range_start"] = dg.MetadataValue.timestamp(outcome.time_range[0])
        metadata["time_range_end"] = dg.MetadataValue.timestamp(outcome.time_range[1])
    if outcome.dropped:
        metadata["dropped"] = dg.MetadataValue.json(outcome.dropped)
    # A load that quarantined values is flagged on its partition (ingest_status keeps ok/no_data;
    # the summary derives the device's "implausible" state from the quarantine table).
    status = "implausible" if rows and loaded and outcome.quarantined else outcome.status
    return PartitionOutcome(outcome.key, status, outcome.detail,
                            rows=outcome.rows if rows and loaded else None, metadata=metadata)


def _report(context: dg.AssetExecutionContext, outcomes: list[DayOutcome], timescale: Timescale,
            *, rows: bool = True, check: bool = True) -> Any:
    for outcome in outcomes:
        if outcome.status == "needs_reconsent":
            context.log.warning(outcome.detail)
        elif outcome.status == "api_error":
            context.log.error(f"{outcome.key}: {outcome.detail}")
    auth = auth_states(timescale, sorted({ParticipantDay.from_key(o.key).participant_id for o in outcomes}))
    yield from report(context, [partition_outcome(o, auth, rows=rows) for o in outcomes], check=check)


@dg.asset(
    owners=OWNERS,
    key=RAW_KEY,
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    backfill_policy=BACKFILL_POLICY,
    pool=GOOGLE_HEALTH_POOL,
    kinds={"json"},
    deps=[GOOGLE_HEALTH_API, FITBIT_WEB_API, ROSTER],
    check_specs=[outcome_check_spec(RAW_KEY, "fetched and landed")],
    description="Exact Google Health / legacy Fitbit API payloads of each participant-day, gzip JSON in the lake.",
)
def raw_payloads(
    context: dg.AssetExecutionContext,
    timescale: TimescaleResource,
    lake: LakeResource,
    google_health: GoogleHealthResource,
    fitbit_legacy: FitbitLegacyResource,
) -> Any:
    with transient_database_errors():
        days = partition_days(context)
        participants = participant_store.load(timescale, sorted({d.participant_id for d in days}))
        # The pool's limit as the instance holds it now: this step's share of the project quota.
        google_slots = pool_slots(context.instance, GOOGLE_HEALTH_POOL)
        clients: dict[str, Callable[[str], Any]] = {
            "google_health": lambda pid: google_health.client(pid, timescale, pool_slots=google_slots),
            "fitbit_legacy": lambda pid: fitbit_legacy.client(pid, timescale)}

        def fetch_participant(participant_days: list[ParticipantDay]) -> list[DayOutcome]:
            """One participant's days, in order, with one client (the access token is reused)."""
            participant = participants.get(participant_days[0].participant_id)
            client: Any = None
            outcomes: list[DayOutcome] = []
            for pday in participant_days:
                reason = ingest.skip_reason(participant, pday.day)
                if reason is not None:
                    outcomes.append(DayOutcome(pday.key, None, "skipped", reason))
                    continue
                assert participant is not None and participant.fitbit_provider is not None
                try:
                    if client is None:
                        client = clients[participant.fitbit_provider](participant.participant_id)
                except ApiError as exc:
                    outcome = DayOutcome(pday.key, participant.fitbit_provider, "api_error", str(exc))
                else:
                    outcome = landing.land_day(pday, participant, client, lake, timescale)
                if outcome.status in ("needs_reconsent", "api_error"):
                    ingest.record_fetch_failure(timescale, pday, outcome)
                outcomes.append(outcome)
            return outcomes

        # Each participant-day's status and calls are on its own partition (``_report``); no log
        # line per participant-day: each is one more event written to Dagster's storage.
        outcomes: list[DayOutcome] = []
        for participant_outcomes in in_parallel(fetch_participant, by_participant(days), FETCH_THREADS):
            outcomes.extend(participant_outcomes)
        yield from _report(context, outcomes, timescale, rows=False)


def _load_each(context: dg.AssetExecutionContext, timescale: Timescale, lake: Lake,
               load: Any, *, check: bool = True) -> Any:
    """Run ``load(pday)`` for every participant-day; a payload that does not parse fails that
    participant-day only (recorded in ingest_status), and the others are loaded all the same."""
    outcomes: list[DayOutcome] = []
    for pday in partition_days(context):
        try:
            outcome = load(pday)
        except (ValueError, ApiError, FileNotFoundError) as exc:  # a bad (PayloadError) or lost (MissingPayload) payload
            outcome = DayOutcome(pday.key, None, "api_error", f"could not load {pday.key}: {exc}")
            manifest = fitbit_manifest.read_manifest(lake, pday) or {}
            outcome.provider = manifest.get("provider")
            ingest.record_fetch_failure(timescale, pday, outcome)
        outcomes.append(outcome)
    yield from _report(context, outcomes, timescale, check=check)


@dg.asset(
    owners=OWNERS,
    key=INTRADAY_KEY,
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    backfill_policy=BACKFILL_POLICY,
    deps=[RAW_KEY],
    kinds={"timescaledb"},
    check_specs=[outcome_check_spec(INTRADAY_KEY, "loaded into TimescaleDB")],
    description="wearables.fitbit_intraday + wearables.fitbit_sleep_stages + wearables.fitbit_sleep_sessions, "
    "replaced per participant-day in one transaction from the landed raw payloads.",
)
def intraday(context: dg.AssetExecutionContext, timescale: TimescaleResource, lake: LakeResource) -> Any:
    with transient_database_errors():
        yield from _load_each(context, timescale, lake, lambda pday: ingest.load_timescale(timescale, lake, pday))


@dg.asset(
    owners=OWNERS,
    key=["fitbit", "intraday_parquet"],
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    retry_policy=RETRY_POLICY,
    backfill_policy=BACKFILL_POLICY,
    deps=[RAW_KEY],
    kinds={"parquet"},
    description="The same canonical rows as parquet in the lake (fitbit_intraday, fitbit_sleep_stages, "
    "fitbit_sleep_sessions), "
    "one folder per participant-day, replaced on re-run.",
)
def intraday_parquet(context: dg.AssetExecutionContext, timescale: TimescaleResource,
                     lake: LakeResource) -> Any:
    with transient_database_errors():
        # Same outcome as fitbit/intraday (same payloads): its check there is enough.
        yield from _load_each(context, timescale, lake, lambda pday: ingest.load_lake(timescale, lake, pday), check=False)

