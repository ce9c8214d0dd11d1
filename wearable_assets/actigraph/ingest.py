"""One participant's CentrePoint days fetched and landed, and one participant-day loaded.

The assets (``assets.py``) only loop over the run's participant-days and report; the work is
here. Every function returns a ``PartitionOutcome`` per participant-day instead of raising for
what is about one participant (API error after dlt's retries, a record we cannot read, no
CentrePoint subject in the roster), so one participant never stops the others of a ranged run.

Overlapping runs of one participant-day serialise on its advisory lock
(``Timescale.participant_day_lock``, source ``centrepoint``), held for each day's landing, lake
replace and database replace, so neither destination is ever left empty or half-written.

Like Fitbit's manifest, each fetch leaves a ``_fetch_status`` next to the participant-day's raw
records: a failed fetch records ``api_error`` there and keeps the previous good records (and the
rows loaded from them) untouched; the TimescaleDB load reads it, so it never reloads old records
as if the failed fetch had succeeded.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import requests

from wearable_assets.actigraph import records
from wearable_assets.actigraph.source import Fetch
from wearable_assets.outcomes import PartitionOutcome
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.roster import Participant
from wearable_assets.storage import ingest_status, quarantine
from wearable_assets.storage.lake import Lake, PartitionTable
from wearable_assets.storage.timescale import Timescale

SOURCE = "centrepoint"  # wearables.ingest_status.source and the raw-payload folder
RAW_NAME = "daily_statistics"
FETCH_STATUS = "_fetch_status"
LAKE_TABLE = "actigraph_daily_statistics"
DB_TABLE = "wearables.actigraph_daily_statistics"


class CentrePointClient(Protocol):
    def fetch_daily_statistics(self, study_id: int, subject_id: int, from_date: date, to_date: date) -> Fetch: ...


def skip_reason(participant: Participant | None, day: date) -> str | None:
    """Why a participant-day has nothing to fetch from CentrePoint (None: fetch it)."""
    if participant is None:
        return ("not in wearables.participants: run `wearable-assets roster sync` (or let the roster sensor run) "
                "so the asset knows the CentrePoint ids and time zone")
    if not (participant.centrepoint_study_id and participant.centrepoint_subject_id):
        return "no CentrePoint subject in the roster"
    if not participant.enrolled_on(day):
        return f"not enrolled on {day}"
    return None


def data_reaches(rows: list[dict[str, Any]]) -> datetime | None:
    """End of the latest 60 s epoch in the day's data: the device uploaded no earlier than this,
    so it is what ``ingest_status.last_device_sync`` can honestly say (CentrePoint's daily
    statistics carry no upload time). A whole uploaded day reaches the local midnight after it."""
    last = max((r["last_epoch_utc"] for r in rows if r["last_epoch_utc"]), default=None)
    return last + timedelta(minutes=1) if last else None


def day_wear(rows: list[dict[str, Any]]) -> int | None:
    """A day's wear is its best setting's (a subject's settings differ in wear algorithm)."""
    wear = [r["wear_minutes"] for r in rows if r["wear_minutes"] is not None]
    return max(wear) if wear else None


def _failed(timescale: Timescale, lake: Lake, participant: Participant, days: list[date], detail: str,
            api_calls: int, now: datetime) -> list[PartitionOutcome]:
    """Record a failed fetch for each day: ingest_status and ``_fetch_status`` say api_error;
    the previous records and rows stay (and so does ingest_status's count of them)."""
    pid = participant.participant_id
    with timescale.connect() as conn:
        for d in days:
            ingest_status.record(conn, pid, d, SOURCE, "api_error", detail=detail[:500], api_calls=api_calls,
                                 finished_at=now)
        conn.commit()
    for day in days:
        with timescale.participant_day_lock(SOURCE, pid, day):
            lake.land_raw(SOURCE, pid, day, FETCH_STATUS,
                          {"status": "api_error", "detail": detail[:2000], "fetched_at": now.isoformat()})
    return [PartitionOutcome(ParticipantDay(d, pid).key, "api_error", detail, metadata={"api_calls": api_calls})
            for d in days]


def fetch_and_land(client: CentrePointClient, lake: Lake, timescale: Timescale, participant: Participant,
                   days: list[date], fetched_at: datetime) -> list[PartitionOutcome]:
    """Fetch the participant's days in one request series, keep each local day's records exactly
    as received (``raw/centrepoint``) and replace each day's rows in the lake."""
    pid = participant.participant_id
    assert participant.centrepoint_study_id and participant.centrepoint_subject_id
    # One day of margin each side: whether fromDate/toDate mean local or UTC days is not
    # documented, and a subject's local day straddles two UTC dates.
    try:
        fetch = client.fetch_daily_statistics(
            int(participant.centrepoint_study_id), int(participant.centrepoint_subject_id),
            min(days) - timedelta(days=1), max(days) + timedelta(days=1),
        )
    except requests.RequestException as exc:  # CentrePointError included: the API's own words
        return _failed(timescale, lake, participant, days, f"CentrePoint request failed: {exc}", 0, fetched_at)
    stats = {"pages": fetch.stats.pages, "api_calls": fetch.stats.api_calls, "not_found": fetch.stats.not_found}
    # Keep what the API sent before interpreting it, so a record we cannot read is not lost.
    raw_by_day, unattributed = records.split_by_local_day(fetch.records, participant.tz)
    for day in days:
        with timescale.participant_day_lock(SOURCE, pid, day):
            lake.land_raw(SOURCE, pid, day, RAW_NAME, {
                "participant_id": pid,
                "study_id": participant.centrepoint_study_id,
                "subject_id": participant.centrepoint_subject_id,
                "time_zone": participant.time_zone,
                "local_date": day.isoformat(),
                "fetched_at": fetched_at.isoformat(),
                "fetch": stats,
                "items": raw_by_day.get(day, []),
                **({"unattributed": unattributed} if unattributed else {}),
            })
    try:
        if unattributed:
            raise records.RecordError(
                f"{len(unattributed)} CentrePoint record(s) of {pid} have no readable 'date' "
                f"(ids {[r.get('id') for r in unattributed][:5]}); kept under raw/{SOURCE}/ in the lake"
            )
        by_day = records.rows_by_day(fetch.records, pid, participant.tz, fetched_at)
    except records.RecordError as exc:
        return _failed(timescale, lake, participant, days, str(exc), fetch.stats.api_calls, fetched_at)
    outcomes = []
    for day in days:
        rows = by_day.get(day, [])
        with timescale.participant_day_lock(SOURCE, pid, day):
            lake.write_partition(pid, day, [PartitionTable(
                LAKE_TABLE, records.as_arrow(rows), {"participant_id": pid, "local_date": day},
                primary_key=records.LAKE_MERGE_KEY)])
            lake.land_raw(SOURCE, pid, day, FETCH_STATUS, {"status": "ok", "fetched_at": fetched_at.isoformat()})
        status, detail = _day_status(rows, stats)
        outcomes.append(PartitionOutcome(ParticipantDay(day, pid).key, status, detail, rows=len(rows), metadata={
            "api_calls": fetch.stats.api_calls, "pages_fetched": fetch.stats.pages, "wear_minutes": day_wear(rows),
        }))
    return outcomes


def _day_status(rows: list[dict[str, Any]], fetch: dict[str, Any]) -> tuple[str, str]:
    if rows:
        return "ok", f"{len(rows)} daily statistic(s)"
    if fetch.get("not_found"):
        return "no_data", "CentrePoint answered 404 (no data for this subject)"
    return "no_data", "CentrePoint has no daily statistic for this local day yet"


def _fetch_status(lake: Lake, participant_id: str, day: date) -> dict[str, Any]:
    try:
        return json.loads(lake.read_raw(SOURCE, participant_id, day, FETCH_STATUS))
    except FileNotFoundError:  # records landed before fetch statuses were kept
        return {"status": "ok"}


def load_day(lake: Lake, timescale: Timescale, participant: Participant, day: date,
             loaded_at: datetime) -> PartitionOutcome:
    """Replace the participant-day in TimescaleDB from its landed records, in one transaction
    together with its ``ingest_status`` row, under the participant-day's lock (an overlapping
    fetch or load of the same participant-day waits)."""
    with timescale.participant_day_lock(SOURCE, participant.participant_id, day):
        return _load_day(lake, timescale, participant, day, loaded_at)


def _load_day(lake: Lake, timescale: Timescale, participant: Participant, day: date,
              loaded_at: datetime) -> PartitionOutcome:
    pid = participant.participant_id
    key = ParticipantDay(day, pid).key
    fetch_status = _fetch_status(lake, pid, day)
    if fetch_status["status"] != "ok":
        return PartitionOutcome(key, fetch_status["status"], "the last CentrePoint fetch failed, earlier rows kept: "
                                + fetch_status.get("detail", ""))
    try:
        landed = json.loads(lake.read_raw(SOURCE, pid, day, RAW_NAME))
    except FileNotFoundError:
        return PartitionOutcome(key, "api_error", f"no landed CentrePoint records: materialise "
                                f"actigraph/daily_statistics_parquet for partition {key} first")
    try:
        rows = records.rows_by_day(landed["items"], pid, participant.tz, loaded_at).get(day, [])
    except records.RecordError as exc:
        return PartitionOutcome(key, "api_error", str(exc))
    fetch = landed.get("fetch", {})
    status, detail = _day_status(rows, fetch)
    with timescale.connect() as conn:
        deleted, inserted = timescale.replace_rows(
            DB_TABLE, where="participant_id = %s AND local_date = %s", params=[pid, day],
            columns=records.COLUMNS, rows=records.as_tuples(rows), conn=conn,
        )
        # Fields outside the plausibility rules were set to NULL in ``rows``; keep them with the
        # reason (an empty list clears an earlier load's).
        quarantined = quarantine.replace_day(timescale, conn, pid, day, "actigraph", records.quarantined(rows))
        if quarantined:
            detail = f"{detail}; {quarantined} implausible value(s) quarantined"
        ingest_status.record(conn, pid, day, SOURCE, status, detail=detail, rows_loaded=inserted,
                             api_calls=int(fetch.get("api_calls", 0)), last_device_sync=data_reaches(rows),
                             finished_at=loaded_at)
        conn.commit()
    wear = day_wear(rows)
    # ingest_status keeps ok/no_data (the summary derives "implausible" from the quarantine);
    # the partition says it plainly.
    return PartitionOutcome(key, "implausible" if quarantined else status, detail, rows=inserted, metadata={
        "rows_replaced": deleted, "wear_minutes": wear, "quarantined_values": quarantined,
        "valid_day": None if wear is None else wear >= records.VALID_DAY_WEAR_MINUTES,
    })
