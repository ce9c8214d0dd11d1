"""Plausibility rules, the quarantine, and what the summary says about each device."""

import math
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from wearable_assets import plausibility, settings
from wearable_assets.actigraph import records
from wearable_assets.fitbit.canonical import Batch, epoch_us
from wearable_assets.fitbit.metrics import METRICS
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.partitions import participant_day_partitions
from wearable_assets.rollups import checks, refresh
from wearable_assets.storage import quarantine
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.rollups.runs import execute, failure_messages
from wearable_assets_tests.rollups.sources import ACTIGRAPH_ONLY, BOTH, Sources, local_midnight, summary

DAY = date(2026, 11, 3)


def test_every_fitbit_metric_and_numeric_actigraph_field_has_a_sourced_rule() -> None:
    assert set(plausibility.FITBIT_RANGES) == set(METRICS)
    numeric = {f.name for f in records.ARROW_SCHEMA if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)}
    assert set(plausibility.ACTIGRAPH_RANGES) == numeric - plausibility.ACTIGRAPH_IDENTIFIERS
    for rule in [*plausibility.FITBIT_RANGES.values(), *plausibility.ACTIGRAPH_RANGES.values()]:
        assert rule.low < rule.high and rule.source.strip()
    assert plausibility.FITBIT_RANGES["heart_rate"].text("heart_rate") == "25 <= heart_rate <= 250 bpm"


def test_batches_are_split_column_wise_with_bounds_included_and_nan_quarantined() -> None:
    start = epoch_us(datetime(2026, 11, 3, 12, tzinfo=timezone.utc))
    values = np.array([0.0, 300.0, -500.0, 1e12, math.nan, math.inf, 87.0])
    n = len(values)
    batch = Batch("steps", start + np.arange(n, dtype=np.int64) * 60_000_000, values, np.zeros(n, dtype=np.int16),
                  np.zeros(n, dtype=np.intp), ("tracker",))
    clean = Batch("heart_rate", batch.ts[:2], np.array([25.0, 250.0]), batch.offset[:2], batch.device[:2], ("t",))
    screen = plausibility.BatchScreen()

    kept = list(screen.screen([batch, clean]))

    assert [b.metric for b in kept] == ["steps", "heart_rate"]
    assert kept[0].value.tolist() == [0.0, 300.0, 87.0] and kept[1] is clean  # untouched batches pass as they are
    assert screen.counts() == {"steps": 4} and screen.total == 4
    found = list(screen.values())
    assert [q.reason for q in found] == [
        "-500 count is below the minimum of 0 count", "1e+12 count is above the maximum of 300 count",
        "nan is not a finite number", "inf is not a finite number"]
    assert found[0].ts == datetime(2026, 11, 3, 12, 2, tzinfo=timezone.utc)
    assert {(q.rule, q.rule_version) for q in found} == {("0 <= steps <= 300 count", plausibility.RULE_VERSION)}


def _centrepoint_record(day: date, tz: str, **epoch: float) -> dict[str, object]:
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz))
    return {
        "id": 7, "studyId": 9, "subjectId": 901, "dailyStatisticsSettingId": "ad1fda37-239d-48ad-581b-08d8556c9944",
        "date": midnight.astimezone(timezone.utc).isoformat(),
        "epochAggregation": {"wearMinutes": 700, "nonWearMinutes": 740, "sleepMinutes": 400,
                             "wearFilteredVectorMagnitude": 310_000.0, **epoch},
        "mavmAggregation": {"wearFilteredSteps": -3},
        "firstEpochDateTimeUtc": (midnight + timedelta(hours=7)).astimezone(timezone.utc).isoformat(),
        "lastEpochDateTimeUtc": (midnight + timedelta(hours=18)).astimezone(timezone.utc).isoformat(),
    }


def test_implausible_actigraph_fields_are_quarantined_and_reported(
    sources: Sources, timescale: TimescaleResource, instance: dg.DagsterInstance
) -> None:
    add_participants(instance, "A001")
    record = _centrepoint_record(DAY, ACTIGRAPH_ONLY.time_zone, wearMinutes=5000)
    loaded_at = datetime.now(timezone.utc)

    rows = records.rows_by_day([record], "A001", ZoneInfo(ACTIGRAPH_ONLY.time_zone), loaded_at)[DAY]

    (row,) = rows
    # The implausible fields are NULL (unmeasured), the valid-day flag follows, the record is as sent.
    assert (row["wear_minutes"], row["steps"], row["is_valid_day"]) == (None, None, False)
    assert (row["non_wear_minutes"], row["total_counts"]) == (740, 310_000)
    assert row["record"]["epochAggregation"]["wearMinutes"] == 5000  # type: ignore[index]
    assert records.as_arrow(rows).column("wear_minutes").to_pylist() == [None]
    found = records.quarantined(rows)
    assert [(q[4], q[7], q[8], q[10]) for q in found] == [
        ("wear_minutes", 5000.0, "0 <= wear_minutes <= 1500 min", "5000 min is above the maximum of 1500 min"),
        ("steps", -3.0, "0 <= steps <= 450000 count", "-3 count is below the minimum of 0 count"),
    ]

    # Stored as the ActiGraph asset stores a day: rows, quarantine and status in one transaction.
    for _ in range(2):  # re-loading the day replaces its quarantine
        with timescale.connect() as conn:
            timescale.replace_rows("wearables.actigraph_daily_statistics", where="participant_id = %s AND "
                                   "local_date = %s", params=["A001", DAY], columns=records.COLUMNS,
                                   rows=records.as_tuples(rows), conn=conn)
            quarantine.replace_day(timescale, conn, "A001", DAY, "actigraph", found)
            conn.commit()
    sources.status(ACTIGRAPH_ONLY, DAY, "centrepoint", "ok")
    assert timescale.fetch("SELECT metric, setting_id, ts FROM wearables.quarantined_values ORDER BY 1") == [
        ("steps", row["setting_id"], None), ("wear_minutes", row["setting_id"], None)]

    refresh.refresh_participant_day_summary(timescale, [ParticipantDay(DAY, "A001")], refresh.ValidDayRule())
    day = summary(timescale, "A001", DAY)
    assert (day["actigraph_status"], day["completeness_reason"], day["valid_day"], day["quarantined_values"]) == (
        "implausible", "actigraph_implausible", False, 2)
    assert "2 implausible value(s) quarantined" in day["completeness_detail"]

    result = execute(dg.AssetSelection.checks(checks.actigraph_values_plausible), instance,
                     partition_key=f"{DAY}|A001", partitions_def=participant_day_partitions)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN, failure_messages(result)
    assert check.metadata["reasons"].value == [
        "actigraph steps: 1 value(s) quarantined (-3) by rule '0 <= steps <= 450000 count' v1, "
        "e.g. -3 count is below the minimum of 0 count",
        "actigraph wear_minutes: 1 value(s) quarantined (5000) by rule '0 <= wear_minutes <= 1500 min' v1, "
        "e.g. 5000 min is above the maximum of 1500 min",
    ]


def test_quarantined_by_day_groups_per_participant_day(sources: Sources, timescale: TimescaleResource) -> None:
    sources.quarantined(BOTH, DAY, "fitbit", "heart_rate", [0, 400, 300])
    sources.quarantined(BOTH, DAY, "actigraph", "mets", [99], setting_id=1)
    sources.quarantined(BOTH, DAY + timedelta(days=1), "fitbit", "spo2", [12])
    days = [ParticipantDay(DAY, "B001"), ParticipantDay(DAY + timedelta(days=2), "B001")]

    found = refresh.quarantined_by_day(timescale, days)

    assert list(found) == [ParticipantDay(DAY, "B001")]  # the next day was not asked for; the third has none
    assert found[ParticipantDay(DAY, "B001")] == [
        "actigraph mets: 1 value(s) quarantined (99) by rule '0 <= mets <= 23 MET' v1, "
        "e.g. 99 MET is above the maximum of 23 MET",
        "fitbit heart_rate: 3 value(s) quarantined (0..400) by rule '25 <= heart_rate <= 250 bpm' v1, "
        "e.g. 0 bpm is below the minimum of 25 bpm",
    ]
    assert list(refresh.quarantined_by_day(timescale, days, devices=["actigraph"])[days[0]]) == [
        found[days[0]][0]]


def _after(day: date, hours: float) -> datetime:
    return local_midnight(BOTH, day + timedelta(days=1)) + timedelta(hours=hours)


def test_complete_only_when_no_rostered_device_failed(
    sources: Sources, timescale: TimescaleResource, instance: dg.DagsterInstance
) -> None:
    """B001 wears both devices. ActiGraph alone makes each day valid; the reason says what failed."""
    d = [DAY + timedelta(days=i) for i in range(4)]
    for day in d:
        sources.actigraph(BOTH, day, wear=700)
        sources.status(BOTH, day, "centrepoint", "ok")
    # d0: both devices fine. d1: the Fitbit grant is revoked. d2: the Fitbit API failed.
    # d3: the Fitbit is fine but its load quarantined implausible steps.
    sources.worn(BOTH, d[0], 650)
    sources.status(BOTH, d[0], "fitbit_legacy", "ok", last_sync=_after(d[0], 2))
    sources.status(BOTH, d[1], "fitbit_legacy", "needs_reconsent", detail="refresh token revoked")
    sources.status(BOTH, d[2], "fitbit_legacy", "api_error", detail="HTTP 503 after 5 attempts")
    sources.worn(BOTH, d[3], 650)
    sources.status(BOTH, d[3], "fitbit_legacy", "ok", last_sync=_after(d[3], 2))
    sources.quarantined(BOTH, d[3], "fitbit", "steps", [-500, 1e12])

    refresh.refresh_participant_day_summary(timescale, [ParticipantDay(day, "B001") for day in d],
                                            refresh.ValidDayRule())

    got = [summary(timescale, "B001", day) for day in d]
    assert [(s["completeness_reason"], s["fitbit_status"], s["actigraph_status"], s["valid_day"],
             s["quarantined_values"]) for s in got] == [
        ("complete", "ok", "ok", True, 0),
        ("fitbit_needs_reconsent", "needs_reconsent", "ok", True, 0),
        ("fitbit_api_error", "api_error", "ok", True, 0),
        ("fitbit_implausible", "implausible", "ok", True, 2),
    ]
    assert "refresh token revoked" in got[1]["completeness_detail"]
    assert got[3]["steps"] == 6500  # the quarantined steps are not in the day's total
    # The completeness check warns for the valid day whose Fitbit needs re-consent, not for the complete one.
    add_participants(instance, "B001")
    for day, passed in ((d[0], True), (d[1], False)):
        result = execute(dg.AssetSelection.checks(checks.participant_day_complete), instance,
                         partition_key=f"{day}|B001", partitions_def=participant_day_partitions)
        (check,) = result.get_asset_check_evaluations()
        assert check.passed is passed, failure_messages(result)
    assert check.metadata["reason"].value == "fitbit_needs_reconsent"

    # The other way round: the ActiGraph subject's data cannot be fetched while the Fitbit is fine.
    sources.timescale.execute("UPDATE wearables.ingest_status SET status = 'api_error', detail = 'HTTP 500' "
                              "WHERE participant_id = 'B001' AND local_date = %s AND source = 'centrepoint'", (d[0],))
    refresh.refresh_participant_day_summary(timescale, [ParticipantDay(d[0], "B001")], refresh.ValidDayRule())
    first = summary(timescale, "B001", d[0])
    assert (first["completeness_reason"], first["fitbit_status"], first["actigraph_status"]) == (
        "actigraph_api_error", "ok", "api_error")


def test_a_load_quarantine_replaces_the_day_and_device_only(sources: Sources, timescale: TimescaleResource) -> None:
    sources.quarantined(BOTH, DAY, "fitbit", "steps", [-1, -2])
    sources.quarantined(BOTH, DAY, "actigraph", "mets", [99])
    sources.quarantined(BOTH, DAY + timedelta(days=1), "fitbit", "steps", [-3])
    with timescale.connect() as conn:
        assert quarantine.replace_day(timescale, conn, "B001", DAY, "fitbit", []) == 0
        conn.commit()
    assert timescale.fetch("SELECT local_date, device, value FROM wearables.quarantined_values ORDER BY 1, 2") == [
        (DAY, "actigraph", 99.0), (DAY + timedelta(days=1), "fitbit", -3.0)]
    with timescale.connect() as conn, pytest.raises(ValueError, match="'garmin' is not one of"):
        quarantine.replace_day(timescale, conn, "B001", DAY, "garmin", [])


def test_the_documented_rules_table_is_the_code_s() -> None:
    doc = (settings.REPO_ROOT / "docs" / "rollups.md").read_text(encoding="utf-8")
    for rule in plausibility.rules_table():
        assert f"| {rule['device']} | `{rule['metric']}` | `{rule['rule']}` | {rule['source']} |" in doc, rule
    assert f"**Version `{plausibility.RULE_VERSION}`**" in doc
