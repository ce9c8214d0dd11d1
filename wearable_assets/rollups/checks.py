"""Data-quality checks, one participant-day partition (or a ranged run's set of them) at a time.

Each check is partitioned like its asset, so the UI shows results per participant-day; in a
ranged run Dagster runs a check once for all the run's keys and records it without a partition.

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


import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg
import fsspec
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wearable_assets import plausibility
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
FRESHNESS_ENV = "WEARABLES_FRESHNESS_MAX_DAYS"
DEFAULT_FRESHNESS_DAYS = 3
#: Lines of detail shown in check metadata (the counts always cover everything).
MAX_LINES = 50


def _lines(items: Sequence[object]) -> dg.MetadataValue:
    text = "\n".join(f"- {item}" for item in items[:MAX_LINES])
    if len(items) > MAX_LINES:
        text += f"\n- … and {len(items) - MAX_LINES} more"
    return dg.MetadataValue.md(text or "none")


def _plausibility_result(days: list[ParticipantDay], problems: dict[ParticipantDay, list[str]],
                         extra: dict[str, Any]) -> dg.AssetCheckResult:
    lines = [f"{d.key}: {line}" for d in sorted(problems, key=lambda d: d.key) for line in problems[d]]
    metadata: dict[str, Any] = {
        "participant_days_checked": len(days),
        "participant_days_with_implausible_values": len(problems),
        "rule_version": plausibility.RULE_VERSION,
        "detail": _lines(lines),
    } | extra
    if len(days) == 1 and problems:
        metadata["reasons"] = dg.MetadataValue.json(problems[days[0]])
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.WARN, metadata=metadata)


@dg.asset_check(
    asset=FITBIT_INTRADAY,
    name="values_plausible",
    partitions_def=participant_day_partitions,
    description="Warns with the reason for each value the load quarantined (outside the plausibility rules, "
    "e.g. heart rate 25-250 bpm, steps 0-300 per minute), and for values still stored outside them. "
    "Not blocking: the rollups never use such values.",
)
def fitbit_values_plausible(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> dg.AssetCheckResult:
    days = partition_days(context)  # type: ignore[arg-type]
    problems = refresh.quarantined_by_day(timescale, days, devices=["fitbit"])
    stored = refresh.out_of_rule(timescale, days)
    for item in stored:
        problems.setdefault(ParticipantDay(item.local_date, item.participant_id), []).append(str(item))
    return _plausibility_result(days, problems, {"stored_values_outside_rules": sum(i.samples for i in stored)})


@dg.asset_check(
    asset=ACTIGRAPH_DAILY,
    name="values_plausible",
    partitions_def=participant_day_partitions,
    description="Warns with the reason for each ActiGraph daily-statistics field the load quarantined "
    "(outside the plausibility rules, e.g. wear minutes above 1500).",
)
def actigraph_values_plausible(context: dg.AssetCheckExecutionContext,
                               timescale: TimescaleResource) -> dg.AssetCheckResult:
    days = partition_days(context)  # type: ignore[arg-type]
    problems = refresh.quarantined_by_day(timescale, days, devices=["actigraph"])
    return _plausibility_result(days, problems, {})


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
def no_duplicate_samples_in_lake(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    days = partition_days(context)  # type: ignore[arg-type]
    rows = 0
    problems: list[str] = []
    duplicated = 0
    for d in days:
        n, dupes, examples = _duplicates_in(lake.partition_prefix(LAKE_INTRADAY_TABLE, d.participant_id, d.day), lake)
        rows += n
        if dupes:
            duplicated += dupes
            problems.append(f"{d.key}: {dupes} duplicated key(s), e.g. {'; '.join(examples)}")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"rows_checked": rows, "duplicated_keys": duplicated, "detail": _lines(problems)},
    )


@dg.asset_check(
    asset=ACTIGRAPH_DAILY,
    partitions_def=participant_day_partitions,
    description="Each ActiGraph row sits on the participant's local date: its record date falls on it and its "
    "first/last epochs lie inside that local day.",
)
def actigraph_local_date(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> dg.AssetCheckResult:
    days = partition_days(context)  # type: ignore[arg-type]
    rows = timescale.fetch(queries.ACTIGRAPH_MISATTRIBUTED, refresh.day_params(days))
    problems = [
        f"{local_date}|{pid} setting {setting}: record date {record_date!r} is local {record_local} in the "
        f"participant's zone; epochs {first} .. {last}"
        for pid, local_date, setting, record_date, record_local, first, last in rows
    ]
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={"participant_days_checked": len(days), "misattributed_rows": len(rows), "detail": _lines(problems)},
    )


@dg.asset_check(
    asset=participant_day_summary,
    partitions_def=participant_day_partitions,
    description="Warns for enrolled participant-days that are not complete, with the reason: below the "
    "valid-day rule (not synced yet, not worn, ...) or a rostered device failed (fitbit_needs_reconsent, "
    "actigraph_api_error, fitbit_implausible, ...) even on a valid day.",
)
def participant_day_complete(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> dg.AssetCheckResult:
    days = partition_days(context)  # type: ignore[arg-type]
    rows = timescale.fetch(queries.SUMMARY_ROWS, refresh.day_params(days))
    enrolled = [r for r in rows if r[2]]
    # Not only invalid days: a valid day whose other device failed is not complete either.
    incomplete = [r for r in enrolled if r[5] not in ("complete", "true_zero")]
    reasons: dict[str, int] = {}
    for row in incomplete:
        reasons[row[5]] = reasons.get(row[5], 0) + 1
    lines = [f"{d}|{pid}: {reason}, {completeness:.0%} of the day worn ({detail})"
             for pid, d, _, _, completeness, reason, detail in incomplete]
    metadata: dict[str, Any] = {
        "enrolled_participant_days": len(enrolled),
        "incomplete": len(incomplete),
        "reasons": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "threshold": refresh.ValidDayRule.from_env().text,
        "detail": _lines(lines),
    }
    if len(days) == 1 and incomplete:
        metadata["reason"] = incomplete[0][5]
    return dg.AssetCheckResult(passed=not incomplete, severity=dg.AssetCheckSeverity.WARN, metadata=metadata)


def freshness_max_age() -> timedelta:
    raw = os.environ.get(FRESHNESS_ENV, "").strip()
    days = float(raw) if raw else DEFAULT_FRESHNESS_DAYS
    if days <= 0:
        raise ValueError(f"{FRESHNESS_ENV}={raw!r} must be a positive number of days")
    return timedelta(days=days)


def stale_devices(
    timescale: Timescale, participant_ids: Sequence[str], now: datetime, max_age: timedelta
) -> tuple[int, list[str]]:
    """(devices checked, lines for devices whose last sync is older than ``max_age`` or unknown).

    Participants whose enrolment ended before the freshness window are not expected to sync.
    """
    rows = timescale.fetch(
        queries.DEVICE_LAST_SYNC,
        {"participant_ids": sorted(set(participant_ids)), "since": (now - max_age).date()},
    )
    stale = []
    for pid, source, last_sync, last_ingest in rows:
        if last_sync is None:
            seen = f"last ingest {last_ingest:%Y-%m-%d %H:%M}Z" if last_ingest else "never ingested"
            stale.append(f"{pid} {source}: no device sync time known ({seen})")
        elif now - last_sync > max_age:
            age = now - last_sync
            stale.append(f"{pid} {source}: last synced {last_sync:%Y-%m-%d %H:%M}Z, "
                         f"{age.days} d {age.seconds // 3600} h ago")
    return len(rows), stale


@dg.asset_check(
    asset=participant_day_summary,
    partitions_def=participant_day_partitions,
    description="Warns when a device of the run's participants has not synced for more than "
    f"{DEFAULT_FRESHNESS_DAYS} days (WEARABLES_FRESHNESS_MAX_DAYS): its data will arrive late or not at all.",
)
def device_freshness(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> dg.AssetCheckResult:
    days: list[ParticipantDay] = partition_days(context)  # type: ignore[arg-type]
    max_age = freshness_max_age()
    checked, stale = stale_devices(timescale, [d.participant_id for d in days], datetime.now(timezone.utc), max_age)
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "devices_checked": checked,
            "stale_devices": len(stale),
            "max_age_days": max_age.total_seconds() / 86400,
            "detail": _lines(stale),
        },
    )


ALL_CHECKS = [
    fitbit_values_plausible,
    actigraph_values_plausible,
    no_duplicate_samples_in_lake,
    actigraph_local_date,
    participant_day_complete,
    device_freshness,
]
