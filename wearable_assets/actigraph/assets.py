"""ActiGraph CentrePoint assets, per participant-day (partitions ``date`` x ``participant``).

``actigraph/daily_statistics_parquet`` calls the API (one request series per participant and
run, however many days the run covers), keeps each local day's records exactly as received
(``lake.land_raw``) and writes that day's typed rows to the lake through
``Lake.write_partition`` (replace-the-day on plain parquet / Athena, Iceberg merge when
configured), so re-materialising a day never duplicates it.

``actigraph/daily_statistics`` loads the same rows into TimescaleDB from the landed records,
replacing the participant-day in one transaction together with its ``ingest_status`` row.

Recomputed days are picked up by re-materialising the trailing partitions (the project's daily
schedule re-pulls a window of days), not by writing other days from this run: Dagster then
knows those days changed, and the rollups that depend on them run again.
"""


import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from itertools import groupby
from typing import Any

import dagster as dg
import requests

from wearable_assets.actigraph import records
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.partitions import participant_day_partitions, partition_days
from wearable_assets.roster import Participant
from wearable_assets.storage.lake import PartitionTable
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale

SOURCE = "centrepoint"  # wearables.ingest_status.source and the raw-payload folder
RAW_NAME = "daily_statistics"
LAKE_TABLE = "actigraph_daily_statistics"
DB_TABLE = "wearables.actigraph_daily_statistics"
POOL = "centrepoint_api"
_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
_STATUS_COLUMNS = ("participant_id", "local_date", "source", "status", "detail", "rows_loaded", "api_calls",
                   "last_device_sync", "finished_at")


class NotInParticipantsTable(LookupError):
    pass


def load_participant(timescale: Timescale, participant_id: str) -> Participant:
    """The participant's roster row as synced into ``wearables.participants``."""
    rows = timescale.fetch(
        "SELECT participant_id, study_id, time_zone, enrolled_from, enrolled_to, fitbit_provider, fitbit_user_id, "
        "centrepoint_study_id, centrepoint_subject_id FROM wearables.participants WHERE participant_id = %s",
        (participant_id,),
    )
    if not rows:
        raise NotInParticipantsTable(
            f"participant {participant_id} is not in wearables.participants; run `wearable-assets roster sync` "
            "(or let the roster sensor run) so the asset knows their CentrePoint ids and time zone"
        )
    return Participant(*rows[0])


def _by_participant(days: list[ParticipantDay]) -> Iterable[tuple[str, list[date]]]:
    for participant_id, group in groupby(sorted(days, key=lambda d: (d.participant_id, d.day)),
                                         key=lambda d: d.participant_id):
        yield participant_id, [d.day for d in group]


def _write_status(
    timescale: Timescale, rows: list[tuple[Any, ...]], conn: Any = None
) -> None:
    timescale.upsert_rows("wearables.ingest_status", key=["participant_id", "local_date", "source"],
                          columns=list(_STATUS_COLUMNS), rows=rows, conn=conn)


def _data_reaches(rows: list[dict[str, Any]]) -> datetime | None:
    """End of the latest 60 s epoch in the day's data: the device uploaded no earlier than this,
    so it is what ``ingest_status.last_device_sync`` can honestly say (CentrePoint's daily
    statistics carry no upload time). A whole uploaded day reaches the local midnight after it."""
    last = max((r["last_epoch_utc"] for r in rows if r["last_epoch_utc"]), default=None)
    return last + timedelta(minutes=1) if last else None


def _summary(day_rows: dict[ParticipantDay, list[dict[str, Any]]]) -> dict[str, Any]:
    """Wear metadata per participant-day; a day's wear is its best setting's (a subject's
    settings differ in wear algorithm). ``valid_day`` for a single participant-day run."""
    per_day = {}
    for pday, rows in sorted(day_rows.items()):
        wear = [r["wear_minutes"] for r in rows if r["wear_minutes"] is not None]
        per_day[pday.key] = max(wear) if wear else None
    worn = [w for w in per_day.values() if w is not None]
    out: dict[str, Any] = {
        "wear_minutes": sum(worn),
        "valid_days": sum(w >= records.VALID_DAY_WEAR_MINUTES for w in worn),
    }
    if len(per_day) == 1:
        (only,) = per_day.values()
        out["valid_day"] = only is not None and only >= records.VALID_DAY_WEAR_MINUTES
    elif per_day:
        out["wear_minutes_by_day"] = per_day
    return out


@dg.asset(
    key=["actigraph", "daily_statistics_parquet"],
    group_name="actigraph",
    partitions_def=participant_day_partitions,
    backfill_policy=_BACKFILL,
    pool=POOL,
    kinds={"dlt", "parquet"},
)
def daily_statistics_parquet(
    context: dg.AssetExecutionContext,
    centrepoint: CentrePointResource,
    lake: LakeResource,
    timescale: TimescaleResource,
) -> dg.MaterializeResult:
    """CentrePoint DailyStatistics per participant-day, in the parquet lake (Athena table
    ``actigraph_daily_statistics``), with each day's API records kept under ``raw/centrepoint``."""
    fetched_at = datetime.now(timezone.utc)
    meta: dict[str, Any] = {"rows": 0, "pages_fetched": 0, "api_calls": 0, "token_requests": 0}
    day_rows: dict[ParticipantDay, list[dict[str, Any]]] = {}
    skipped: list[str] = []
    lake_partitions = 0
    for participant_id, days in _by_participant(partition_days(context)):
        participant = load_participant(timescale, participant_id)
        if not (participant.centrepoint_study_id and participant.centrepoint_subject_id):
            skipped.append(f"{participant_id}: no CentrePoint subject in the roster")
            continue
        days = [d for d in days if participant.enrolled_on(d)]
        if not days:
            skipped.append(f"{participant_id}: not enrolled on the requested day(s)")
            continue
        # One day of margin each side: whether fromDate/toDate mean local or UTC days is not
        # documented, and a subject's local day straddles two UTC dates.
        try:
            fetch = centrepoint.fetch_daily_statistics(
                int(participant.centrepoint_study_id), int(participant.centrepoint_subject_id),
                min(days) - timedelta(days=1), max(days) + timedelta(days=1),
            )
        except requests.RequestException as exc:  # CentrePointError included: the API's own words
            now = datetime.now(timezone.utc)
            _write_status(timescale, [(participant_id, d, SOURCE, "api_error", str(exc)[:500], 0, 0, None, now)
                                      for d in days])
            raise
        # Keep what the API sent before interpreting it, so a record we cannot read is not lost.
        raw_by_day, unattributed = records.split_by_local_day(fetch.records, participant.tz)
        for day in days:
            lake.land_raw(SOURCE, participant_id, day, RAW_NAME, {
                "participant_id": participant_id,
                "study_id": participant.centrepoint_study_id,
                "subject_id": participant.centrepoint_subject_id,
                "time_zone": participant.time_zone,
                "local_date": day.isoformat(),
                "fetched_at": fetched_at.isoformat(),
                "fetch": {"pages": fetch.stats.pages, "api_calls": fetch.stats.api_calls,
                          "not_found": fetch.stats.not_found},
                "items": raw_by_day.get(day, []),
                **({"unattributed": unattributed} if unattributed else {}),
            })
        if unattributed:
            raise records.RecordError(
                f"{len(unattributed)} CentrePoint record(s) of {participant_id} have no readable 'date' "
                f"(ids {[r.get('id') for r in unattributed][:5]}); kept under raw/{SOURCE}/ in the lake"
            )
        by_day = records.rows_by_day(fetch.records, participant_id, participant.tz, fetched_at)
        for day in days:
            rows = by_day.get(day, [])
            lake.write_partition(participant_id, day, [PartitionTable(
                LAKE_TABLE, records.as_arrow(rows), {"participant_id": participant_id, "local_date": day},
                primary_key=records.LAKE_MERGE_KEY)])
            lake_partitions += bool(rows)
            day_rows[ParticipantDay(day, participant_id)] = rows
            meta["rows"] += len(rows)
        meta["pages_fetched"] += fetch.stats.pages
        meta["api_calls"] += fetch.stats.api_calls
        meta["token_requests"] += fetch.stats.token_requests
        context.log.info(
            f"{participant_id}: {fetch.stats.pages} page(s), {len(fetch.records)} record(s) for "
            f"{min(days)}..{max(days)} (+/-1 day), {sum(len(by_day.get(d, [])) for d in days)} row(s) kept"
        )
    meta.update(_summary(day_rows))
    meta["lake_table"] = LAKE_TABLE
    meta["lake_partitions_written"] = lake_partitions
    if skipped:
        meta["skipped"] = "; ".join(skipped)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    key=["actigraph", "daily_statistics"],
    deps=[daily_statistics_parquet],
    group_name="actigraph",
    partitions_def=participant_day_partitions,
    backfill_policy=_BACKFILL,
    kinds={"timescaledb"},
)
def daily_statistics(
    context: dg.AssetExecutionContext, lake: LakeResource, timescale: TimescaleResource
) -> dg.MaterializeResult:
    """CentrePoint DailyStatistics in ``wearables.actigraph_daily_statistics`` (one row per
    participant, local day and setting), loaded from the records landed upstream."""
    loaded_at = datetime.now(timezone.utc)
    meta: dict[str, Any] = {"rows": 0, "rows_replaced": 0}
    day_rows: dict[ParticipantDay, list[dict[str, Any]]] = {}
    for participant_id, days in _by_participant(partition_days(context)):
        participant = load_participant(timescale, participant_id)
        if not participant.centrepoint_subject_id:
            continue
        for day in [d for d in days if participant.enrolled_on(d)]:
            try:
                landed = json.loads(lake.read_raw(SOURCE, participant_id, day, RAW_NAME))
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"no landed CentrePoint records for {participant_id} on {day}: materialise "
                    f"actigraph/daily_statistics_parquet for partition {day}|{participant_id} first"
                ) from None
            rows = records.rows_by_day(landed["items"], participant_id, participant.tz, loaded_at).get(day, [])
            fetch = landed.get("fetch", {})
            if rows:
                status, detail = "ok", f"{len(rows)} daily statistic(s)"
            elif fetch.get("not_found"):
                status, detail = "no_data", "CentrePoint answered 404 (no data for this subject)"
            else:
                status, detail = "no_data", "CentrePoint has no daily statistic for this local day yet"
            last_sync = _data_reaches(rows)
            with timescale.connect() as conn:
                deleted, inserted = timescale.replace_rows(
                    DB_TABLE, where="participant_id = %s AND local_date = %s", params=[participant_id, day],
                    columns=records.COLUMNS, rows=records.as_tuples(rows), conn=conn,
                )
                _write_status(timescale, [(participant_id, day, SOURCE, status, detail, inserted,
                                           int(fetch.get("api_calls", 0)), last_sync, loaded_at)], conn=conn)
                conn.commit()
            meta["rows"] += inserted
            meta["rows_replaced"] += deleted
            day_rows[ParticipantDay(day, participant_id)] = rows
    meta.update(_summary(day_rows))
    meta["table"] = DB_TABLE
    return dg.MaterializeResult(metadata=meta)
