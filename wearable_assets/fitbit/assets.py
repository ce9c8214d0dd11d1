"""The Fitbit assets: raw payloads -> TimescaleDB, raw payloads -> parquet lake.

All three are partitioned by ``date x participant`` and loop over ``partition_days(context)``, so
a backfill can batch several participant-days per run (``BACKFILL_POLICY``).

Outcome rules for a ranged run (several participant-days):

* a participant whose grant is dead (``needs_reconsent``) is recorded in ``ingest_status`` and
  in the metadata, and the others carry on: the run succeeds, because nothing is wrong with the
  pipeline and retrying will not help until a person acts;
* an API failure that survived the retries, or a payload that does not parse, is recorded for
  that participant-day, the others are still processed (each participant-day is its own
  transaction), and then the asset **fails** naming the failed participant-days, so the run is
  red and a retry re-does them (re-runs are idempotent).
"""


from typing import Any

import dagster as dg

from wearable_assets.fitbit import ingest, landing
from wearable_assets.fitbit.http import ApiError
from wearable_assets.fitbit.ingest import DayOutcome
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.partitions import partition_days, participant_day_partitions
from wearable_assets.storage.lake import Lake
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale

GROUP = "fitbit"
#: Participant-days per backfill run: ~15-25 API calls each, well inside 300 calls/min/user.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=8)
RAW_KEY = dg.AssetKey(["fitbit", "raw_payloads"])


def auth_states(timescale: Timescale, participant_ids: list[str]) -> dict[str, str]:
    """``{"P001/google_health": "active", "P003/fitbit_legacy": "needs_reconsent (gone_410)"}``."""
    rows = timescale.fetch(
        "SELECT participant_id, provider, auth_state, reconsent_reason FROM wearables.oauth_tokens "
        "WHERE participant_id = ANY(%s) ORDER BY 1, 2",
        (participant_ids,),
    )
    return {f"{pid}/{provider}": state + (f" ({reason})" if reason else "") for pid, provider, state, reason in rows}


def run_metadata(outcomes: list[DayOutcome], timescale: Timescale) -> dict[str, Any]:
    """What a run did, summed over its participant-days, plus the per-day detail. No secrets:
    only counts, times, statuses and our own messages."""
    per_metric: dict[str, int] = {}
    for outcome in outcomes:
        for metric, count in outcome.rows_per_metric.items():
            per_metric[metric] = per_metric.get(metric, 0) + count
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    ranges = [o.time_range for o in outcomes if o.time_range]
    completeness = [o.hr_completeness_pct for o in outcomes if o.hr_completeness_pct is not None]
    participants = sorted({ParticipantDay.from_key(o.key).participant_id for o in outcomes})
    reconsent = [f"{o.key}: {o.detail}" for o in outcomes if o.status == "needs_reconsent"]
    metadata: dict[str, Any] = {
        "participant_days": len(outcomes),
        "status_counts": dg.MetadataValue.json(statuses),
        "rows": sum(o.rows for o in outcomes),
        "rows_per_metric": dg.MetadataValue.json(per_metric),
        "sleep_stages": sum(o.sleep_stages for o in outcomes),
        "api_calls": sum(o.api_calls for o in outcomes),
        "auth_state": dg.MetadataValue.json(auth_states(timescale, participants)),
        "participant_day_detail": dg.MetadataValue.json([o.as_metadata() for o in outcomes]),
    }
    if ranges:
        metadata["time_range_start"] = dg.MetadataValue.timestamp(min(r[0] for r in ranges))
        metadata["time_range_end"] = dg.MetadataValue.timestamp(max(r[1] for r in ranges))
    if completeness:
        metadata["hr_completeness_pct_min"] = min(completeness)
        metadata["hr_completeness_pct_mean"] = round(sum(completeness) / len(completeness), 2)
    if reconsent:
        metadata["needs_reconsent"] = dg.MetadataValue.md("\n".join(f"- {line}" for line in reconsent))
    return metadata


def _finish(context: dg.AssetExecutionContext, outcomes: list[DayOutcome],
            timescale: Timescale) -> dg.MaterializeResult:
    metadata = run_metadata(outcomes, timescale)
    for outcome in outcomes:
        if outcome.status == "needs_reconsent":
            context.log.warning(outcome.detail)
    failed = [o for o in outcomes if o.status == "api_error"]
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(outcomes)} participant-days failed: "
            + "; ".join(f"{o.key}: {o.detail}" for o in failed),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=RAW_KEY,
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    pool="google_health_api",
    kinds={"json"},
    description="Exact Google Health / legacy Fitbit API payloads of each participant-day, gzip JSON in the lake.",
)
def raw_payloads(
    context: dg.AssetExecutionContext,
    timescale: TimescaleResource,
    lake: LakeResource,
    google_health: GoogleHealthResource,
    fitbit_legacy: FitbitLegacyResource,
) -> dg.MaterializeResult:
    days = partition_days(context)
    participants = ingest.load_participants(timescale, sorted({d.participant_id for d in days}))
    resources = {"google_health": google_health, "fitbit_legacy": fitbit_legacy}
    clients: dict[tuple[str, str], Any] = {}  # one per participant: the access token is reused across days
    outcomes: list[DayOutcome] = []
    for pday in days:
        participant = participants.get(pday.participant_id)
        reason = ingest.skip_reason(participant, pday.day)
        if reason is not None:
            outcomes.append(DayOutcome(pday.key, None, "skipped", reason))
            continue
        assert participant is not None and participant.provider is not None
        try:
            key = (participant.participant_id, participant.provider)
            if key not in clients:
                clients[key] = resources[participant.provider].client(participant.participant_id, timescale)
        except ApiError as exc:
            outcome = DayOutcome(pday.key, participant.provider, "api_error", str(exc))
        else:
            outcome = landing.land_day(pday, participant, clients[key], lake, timescale)
        if outcome.status in ("needs_reconsent", "api_error"):
            ingest.record_fetch_failure(timescale, pday, outcome)
        context.log.info("%s: %s, %d API calls", pday.key, outcome.status, outcome.api_calls)
        outcomes.append(outcome)
    return _finish(context, outcomes, timescale)


def _load_each(context: dg.AssetExecutionContext, timescale: Timescale, lake: Lake,
               load: Any) -> dg.MaterializeResult:
    """Run ``load(pday)`` for every participant-day; a payload that does not parse fails that
    participant-day only (recorded in ingest_status), after the others are done."""
    outcomes: list[DayOutcome] = []
    for pday in partition_days(context):
        try:
            outcome = load(pday)
        except (ValueError, ApiError, FileNotFoundError) as exc:  # a bad (PayloadError) or lost (MissingPayload) payload
            outcome = DayOutcome(pday.key, None, "api_error", f"could not load {pday.key}: {exc}")
            manifest = ingest.read_manifest(lake, pday) or {}
            outcome.provider = manifest.get("provider")
            ingest.record_fetch_failure(timescale, pday, outcome)
        context.log.info("%s: %s, %d rows", pday.key, outcome.status, outcome.rows)
        outcomes.append(outcome)
    return _finish(context, outcomes, timescale)


@dg.asset(
    key=["fitbit", "intraday"],
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    deps=[RAW_KEY],
    kinds={"timescaledb"},
    description="wearables.fitbit_intraday + wearables.fitbit_sleep_stages, replaced per participant-day "
    "in one transaction from the landed raw payloads.",
)
def intraday(context: dg.AssetExecutionContext, timescale: TimescaleResource, lake: LakeResource) -> dg.MaterializeResult:
    return _load_each(context, timescale, lake, lambda pday: ingest.load_timescale(timescale, lake, pday))


@dg.asset(
    key=["fitbit", "intraday_parquet"],
    group_name=GROUP,
    partitions_def=participant_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    deps=[RAW_KEY],
    kinds={"parquet"},
    description="The same canonical rows as parquet in the lake (fitbit_intraday, fitbit_sleep_stages), "
    "one folder per participant-day, replaced on re-run.",
)
def intraday_parquet(context: dg.AssetExecutionContext, timescale: TimescaleResource,
                     lake: LakeResource) -> dg.MaterializeResult:
    return _load_each(context, timescale, lake, lambda pday: ingest.load_lake(timescale, lake, pday))

