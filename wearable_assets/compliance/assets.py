"""The daily alert asset ``compliance/alerts``: one result per participant in Dagster.

Why an asset partitioned by participant (the ``participants`` dynamic partitions) rather than a
check on ``participant_day_summary``: the alert rules judge a *participant* (a run of bad days,
a silent device, a dead token), not a participant-day. A check on the participant-day asset
would repeat the same verdict on every day's partition (or pick one arbitrary day), and an
unpartitioned asset can only hold one check result per check, so per-participant results on it
would need one check per participant, defined before the roster is known. Partitioning by the
participant dimension gives each participant its own partition, so the check
``participant_alerts`` has exactly one result per participant and the UI's partition view lists
who is flagged. One ranged run covers every participant (``BackfillPolicy.single_run``): the
daily schedule requests the whole participant range at 11:00 UTC, after the 09:00 ingest
(a 1,000-participant tick takes about 40 minutes, benchmarks/backfill_throughput.py).

Each run stores its results in ``wearables.compliance_alerts`` (with the thresholds) and, when
a webhook is configured and something fired, sends one notification with ids and counts only.
"""


from collections.abc import Iterator
from datetime import date, datetime, time, timezone
from typing import Any

import dagster as dg

from wearable_assets import settings
from wearable_assets.compliance import alerts
from wearable_assets.compliance.config import AlertConfig
from wearable_assets.external import OWNERS
from wearable_assets.outcomes import check_evaluation, check_output
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, participant_partitions
from wearable_assets.storage.resources import TimescaleResource

ALERTS_KEY = dg.AssetKey(["compliance", "alerts"])
CHECK_NAME = "participant_alerts"
CRON_ENV = settings.ALERT_CRON_ENV
DEFAULT_CRON = "0 11 * * *"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


class AlertRunConfig(dg.Config):
    #: Evaluate as of this day (YYYY-MM-DD; "yesterday" is the day before). Default: today, UTC.
    evaluated_on: str | None = None


def _when(config: AlertRunConfig) -> tuple[date, datetime]:
    if config.evaluated_on:
        day = date.fromisoformat(config.evaluated_on)
        return day, datetime.combine(day, time(), tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    return now.date(), now


@dg.asset(
    owners=OWNERS,
    key=ALERTS_KEY,
    partitions_def=participant_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="compliance",
    check_specs=[dg.AssetCheckSpec(
        CHECK_NAME, asset=ALERTS_KEY, partitions_def=participant_partitions, blocking=False,
        description="Compliance alert rules for this participant (consecutive non-valid days, no recent sync, "
                    "token needs re-consent); warns when any fired, errors when the token needs re-consent. "
                    "Metadata: each rule's value, the study's share of invalid days yesterday, and the "
                    "thresholds used.")],
    description="Daily compliance alert rules per participant, stored in wearables.compliance_alerts and "
                "notified to WEARABLES_ALERT_WEBHOOK_URL (ids and counts only).",
)
def compliance_alerts(context: dg.AssetExecutionContext, config: AlertRunConfig,
                      timescale: TimescaleResource) -> Iterator[Any]:
    settings = AlertConfig.from_env()
    evaluated_on, now = _when(config)
    participant_ids = sorted(str(k) for k in context.partition_keys)
    with timescale.connect() as conn:
        evaluations = alerts.evaluate(conn, participant_ids, evaluated_on, now, settings)
        alerts.store(conn, evaluations)
        conn.commit()
    body = alerts.message(evaluations, settings)
    delivery = alerts.notify(body, settings) if body else alerts.Delivery(False, 0, None, "nothing fired")
    context.log.info("compliance alerts for %s: %d participant(s), %d flagged; notification: %s", evaluated_on,
                     len(evaluations), sum(1 for e in evaluations if e.fired), delivery.detail)
    # No metadata here: in a ranged run Dagster copies it to every partition (outcomes.py); each
    # participant's own materialisation below carries the run's facts with its own.
    yield dg.MaterializeResult()
    run_facts = {"notification": delivery.detail, "webhook_configured": settings.webhook_url is not None}
    by_id = {e.participant_id: e for e in evaluations}
    for pid in participant_ids:
        evaluation = by_id.get(pid)
        if evaluation is None:  # a partition key the roster no longer holds
            metadata: dict[str, Any] = {"evaluated_on": evaluated_on.isoformat(),
                                        "detail": "not in the roster (wearables.participants): nothing to evaluate"}
            passed = True
        else:
            metadata = evaluation.metadata(settings)
            passed = not evaluation.fired
        metadata.update(run_facts)
        yield dg.AssetMaterialization(asset_key=ALERTS_KEY, partition=pid, metadata=metadata)
        # ERROR where a person must act on the grant (as outcomes.SEVERITY does for needs_reconsent).
        severity = (dg.AssetCheckSeverity.ERROR if evaluation is not None and "needs_reconsent" in evaluation.fired
                    else dg.AssetCheckSeverity.WARN)
        yield check_evaluation(ALERTS_KEY, CHECK_NAME, pid, passed, severity, metadata,
                               description=None if passed else f"fired: {metadata['fired']}")
    yield check_output(context, dg.AssetCheckKey(ALERTS_KEY, CHECK_NAME))


alerts_job = dg.define_asset_job("compliance_alerts_job", selection=dg.AssetSelection.assets(ALERTS_KEY),
                                 partitions_def=participant_partitions)


@dg.schedule(job=alerts_job, cron_schedule=settings.text(CRON_ENV, DEFAULT_CRON), execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description=f"Compliance alert rules for every participant, daily ({DEFAULT_CRON} UTC unless "
                         f"${CRON_ENV} says otherwise), as of the tick's UTC day.")
def daily_compliance_alerts(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """One run over every participant partition, evaluated as of the tick's UTC day."""
    keys = context.instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    if not keys:
        return dg.SkipReason("no participants in the partitions yet (the roster sensor adds them)")
    day = context.scheduled_execution_time.astimezone(timezone.utc).date().isoformat()
    return dg.RunRequest(
        run_key=f"alerts:{day}", tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
        run_config={"ops": {"compliance__alerts": {"config": {"evaluated_on": day}}}},
    )
