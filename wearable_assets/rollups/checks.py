"""Data-quality checks, one result per participant-day, also in a ranged run.

Each check is partitioned like its asset. In a ranged run Dagster runs a check once for all the
run's keys; the checks here evaluate every participant-day of the run in one query and yield one
evaluation per participant-day partition (``outcomes.report_checks``), so the UI shows each
participant-day's own result and metadata, never the run's.

* values plausible on ``fitbit/intraday`` and on ``actigraph/daily_statistics``: which values
  the load quarantined under the plausibility rules (``wearable_assets/plausibility.py``, heart
  rate 25-250 bpm among them), and on Fitbit also values still stored outside the rules (loaded
  before them). Not blocking: quarantined values never reach the measurement tables and the
  rollups ignore stored ones, so a bad participant-day holds nobody back; it warns instead. (It
  replaces the blocking heart-rate check, which stopped every participant-day of a ranged run
  for one bad one.)
* no duplicate ``(participant, metric, ts)`` in the lake's ``fitbit_intraday`` parquet (the
  database cannot hold duplicates: its unique index is the load's idempotency key; the lake has
  no such index, and a crash between writing new files and deleting old ones leaves both);
* ActiGraph rows attributed to the participant's local date;
* completeness of each participant-day (warns with the reason when below the valid-day rule or
  when a rostered device failed);
* freshness: how long since each device last synced.
"""


from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg
import fsspec
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wearable_assets import plausibility, settings
from wearable_assets.outcomes import report_checks
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.partitions import participant_day_partitions, partition_days
from wearable_assets.rollups import queries, refresh
from wearable_assets.rollups.assets import ACTIGRAPH_DAILY, FITBIT_INTRADAY, participant_day_summary
from wearable_assets.storage.lake import Lake
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale

FITBIT_INTRADAY_PARQUET = dg.AssetKey(["fitbit", "intraday_parquet"])
#: Lake table the Fitbit parquet asset writes (wearable_assets/fitbit/ingest.py LAKE_INTRADAY).
LAKE_INTRADAY_TABLE = "fitbit_intraday"
SAMPLE_KEY = ["participant_id", "metric", "ts"]
DEFAULT_FRESHNESS_DAYS = 3
#: Lines of detail shown in check metadata (the counts always cover everything).
MAX_LINES = 50


def _lines(items: Sequence[object]) -> dg.MetadataValue:
    text = "\n".join(f"- {item}" for item in items[:MAX_LINES])
    if len(items) > MAX_LINES:
        text += f"\n- … and {len(items) - MAX_LINES} more"
    return dg.MetadataValue.md(text or "none")


def _plausibility_results(context: dg.AssetCheckExecutionContext, asset: dg.AssetKey,
                          problems: dict[ParticipantDay, list[str]]) -> Any:
    """One WARN result per participant-day: passed when the load quarantined nothing."""
    results = {
        d.key: (d not in problems, {
            "rule_version": plausibility.RULE_VERSION,
            "reasons": dg.MetadataValue.json(problems.get(d, [])),
        })
        for d in partition_days(context)  # type: ignore[arg-type]
    }
    yield from report_checks(context, asset, "values_plausible", results, severity=dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=FITBIT_INTRADAY,
    name="values_plausible",
    partitions_def=participant_day_partitions,
    description="Warns with the reason for each value the load quarantined (outside the plausibility rules, "
    "e.g. heart rate 25-250 bpm, steps 0-300 per minute), and for values still stored outside them. "
    "Not blocking: the rollups never use such values.",
)
def fitbit_values_plausible(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> Any:
    days = partition_days(context)  # type: ignore[arg-type]
    problems = refresh.quarantined_by_day(timescale, days, devices=["fitbit"])
    stored = refresh.out_of_rule(timescale, days)
    for item in stored:
        problems.setdefault(ParticipantDay(item.local_date, item.participant_id), []).append(str(item))
    yield from _plausibility_results(context, FITBIT_INTRADAY, problems)


@dg.asset_check(
    asset=ACTIGRAPH_DAILY,
    name="values_plausible",
    partitions_def=participant_day_partitions,
    description="Warns with the reason for each ActiGraph daily-statistics field the load quarantined "
    "(outside the plausibility rules, e.g. wear minutes above 1500).",
)
def actigraph_values_plausible(context: dg.AssetCheckExecutionContext,
                               timescale: TimescaleResource) -> Any:
    days = partition_days(context)  # type: ignore[arg-type]
    problems = refresh.quarantined_by_day(timescale, days, devices=["actigraph"])
    yield from _plausibility_results(context, ACTIGRAPH_DAILY, problems)


def _duplicates_in(path_prefix: str, lake: Lake) -> tuple[int, int, list[str]]:
    """(rows, duplicated keys, examples) over the parquet files under ``path_prefix``."""
    options: dict[str, Any] = {}
    if not lake.is_local and lake.aws_endpoint_url:
        options["client_kwargs"] = {"endpoint_url": lake.aws_endpoint_url}
    fs, root = fsspec.core.url_to_fs(path_prefix, **options)
    files = sorted(fs.glob(f"{root}/*.parquet")) if fs.exists(root) else []
    if not files:
        return 0, 0, []
    # partitioning=None: the hive folders (participant_id=...) repeat a column the files already hold.
    table = pq.read_table(files, filesystem=fs, columns=SAMPLE_KEY, partitioning=None)
    counts = table.group_by(SAMPLE_KEY).aggregate([("participant_id", "count")])
    dupes = counts.filter(pc.greater(counts["participant_id_count"], 1))
    examples = [
        f"{row['participant_id']} {row['metric']} {row['ts'].isoformat()} x{row['participant_id_count']}"
        for row in dupes.slice(0, 5).to_pylist()
    ]
    return table.num_rows, dupes.num_rows, examples


@dg.asset_check(
    asset=FITBIT_INTRADAY_PARQUET,
    partitions_def=participant_day_partitions,
    description="No (participant, metric, ts) appears twice in the participant-day's lake parquet.",
)
def no_duplicate_samples_in_lake(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> Any:
    results = {}
    for d in partition_days(context):  # type: ignore[arg-type]
        n, dupes, examples = _duplicates_in(lake.partition_prefix(LAKE_INTRADAY_TABLE, d.participant_id, d.day), lake)
        results[d.key] = (not dupes, {"rows_checked": n, "duplicated_keys": dupes, "detail": _lines(examples)})
    yield from report_checks(context, FITBIT_INTRADAY_PARQUET, "no_duplicate_samples_in_lake", results)


@dg.asset_check(
    asset=ACTIGRAPH_DAILY,
    partitions_def=participant_day_partitions,
    description="Each ActiGraph row sits on the participant's local date: its record date falls on it and its "
    "first/last epochs lie inside that local day.",
)
def actigraph_local_date(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> Any:
    days = partition_days(context)  # type: ignore[arg-type]
    problems: dict[str, list[str]] = {}
    for pid, local_date, setting, record_date, record_local, first, last in timescale.fetch(
            queries.ACTIGRAPH_MISATTRIBUTED, refresh.day_params(days)):
        problems.setdefault(ParticipantDay(local_date, pid).key, []).append(
            f"setting {setting}: record date {record_date!r} is local {record_local} in the participant's zone; "
            f"epochs {first} .. {last}")
    results = {d.key: (d.key not in problems, {"misattributed_rows": len(problems.get(d.key, [])),
                                                "detail": _lines(problems.get(d.key, []))}) for d in days}
    yield from report_checks(context, ACTIGRAPH_DAILY, "actigraph_local_date", results)


@dg.asset_check(
    asset=participant_day_summary,
    partitions_def=participant_day_partitions,
    description="Warns for enrolled participant-days that are not complete, with the reason: below the "
    "valid-day rule (not synced yet, not worn, ...) or a rostered device failed (fitbit_needs_reconsent, "
    "actigraph_api_error, fitbit_implausible, ...) even on a valid day.",
)
def participant_day_complete(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> Any:
    days = partition_days(context)  # type: ignore[arg-type]
    threshold = refresh.ValidDayRule.from_env().text
    rows = {ParticipantDay(r[1], r[0]).key: r for r in timescale.fetch(queries.SUMMARY_ROWS, refresh.day_params(days))}
    results: dict[str, tuple[bool, dict[str, Any]]] = {}
    for d in days:
        row = rows.get(d.key)
        if row is None:
            results[d.key] = (False, {"reason": "no_summary_row", "threshold": threshold,
                                      "detail": "materialise participant_day_summary for this participant-day"})
            continue
        _, _, enrolled, valid, completeness, reason, detail = row
        metadata: dict[str, Any] = {"enrolled": bool(enrolled), "valid_day": bool(valid), "reason": reason,
                                    "threshold": threshold}
        if completeness is not None:
            metadata["completeness"] = float(completeness)
        if detail:
            metadata["detail"] = detail
        # Not enrolled: nothing is expected, so nothing is incomplete (the reason says so). Not
        # only invalid days fail: a valid day whose other rostered device failed is not complete.
        results[d.key] = (reason in ("complete", "true_zero") or not enrolled, metadata)
    yield from report_checks(context, participant_day_summary.key, "participant_day_complete", results,
                             severity=dg.AssetCheckSeverity.WARN)


def freshness_max_age() -> timedelta:
    return timedelta(days=settings.positive_number(settings.FRESHNESS_ENV, DEFAULT_FRESHNESS_DAYS, "days"))


def stale_devices(
    timescale: Timescale, participant_ids: Sequence[str], now: datetime, max_age: timedelta
) -> dict[str, tuple[int, list[str]]]:
    """Per participant: (devices checked, lines for devices whose last sync is older than
    ``max_age`` or unknown). One query for all of them.

    Participants whose enrolment ended before the freshness window are not expected to sync.
    """
    ids = sorted(set(participant_ids))
    rows = timescale.fetch(queries.DEVICE_LAST_SYNC, {"participant_ids": ids, "since": (now - max_age).date()})
    found: dict[str, tuple[int, list[str]]] = {pid: (0, []) for pid in ids}
    for pid, source, last_sync, last_ingest in rows:
        checked, stale = found[pid]
        if last_sync is None:
            seen = f"last ingest {last_ingest:%Y-%m-%d %H:%M}Z" if last_ingest else "never ingested"
            stale.append(f"{pid} {source}: no device sync time known ({seen})")
        elif now - last_sync > max_age:
            age = now - last_sync
            stale.append(f"{pid} {source}: last synced {last_sync:%Y-%m-%d %H:%M}Z, "
                         f"{age.days} d {age.seconds // 3600} h ago")
        found[pid] = (checked + 1, stale)
    return found


@dg.asset_check(
    asset=participant_day_summary,
    partitions_def=participant_day_partitions,
    description="Warns when a device of the run's participants has not synced for more than "
    f"{DEFAULT_FRESHNESS_DAYS} days ({settings.FRESHNESS_ENV}): its data will arrive late or not at all.",
)
def device_freshness(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> Any:
    days: list[ParticipantDay] = partition_days(context)  # type: ignore[arg-type]
    max_age = freshness_max_age()
    now = datetime.now(timezone.utc)
    devices = stale_devices(timescale, [d.participant_id for d in days], now, max_age)
    results = {
        d.key: (not devices[d.participant_id][1], {
            "devices_checked": devices[d.participant_id][0],
            "stale_devices": len(devices[d.participant_id][1]),
            "max_age_days": max_age.total_seconds() / 86400,
            "detail": _lines(devices[d.participant_id][1]),
        })
        for d in days
    }
    yield from report_checks(context, participant_day_summary.key, "device_freshness", results,
                             severity=dg.AssetCheckSeverity.WARN)


ALL_CHECKS = [
    fitbit_values_plausible,
    actigraph_values_plausible,
    no_duplicate_samples_in_lake,
    actigraph_local_date,
    participant_day_complete,
    device_freshness,
]
