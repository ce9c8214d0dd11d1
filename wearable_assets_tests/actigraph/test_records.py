"""Day attribution and typed columns, on hand-written records and the simulator's (no server)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from wearable_assets.actigraph import records
from wearable_assets.roster import Participant
from wearable_assets_dev.simulators.centrepoint import DATE_READINGS, CentrePointSimulator

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
BRISBANE = ZoneInfo("Australia/Brisbane")  # UTC+10, no DST
NEW_YORK = ZoneInfo("America/New_York")  # UTC-5 in November


@pytest.mark.parametrize(
    ("value", "tz", "expected"),
    [
        # Local midnight written as a UTC instant: the UTC date is a day early east of UTC.
        ("2026-11-01T14:00:00+00:00", BRISBANE, date(2026, 11, 2)),
        ("2026-11-02T05:00:00+00:00", NEW_YORK, date(2026, 11, 2)),
        ("2026-11-02T05:00:00Z", NEW_YORK, date(2026, 11, 2)),
        # 1 November 2026 is the DST change in New York: its midnight is still EDT (UTC-4).
        ("2026-11-01T04:00:00+00:00", NEW_YORK, date(2026, 11, 1)),
        # Midnight stated in a neighbouring zone (time-zone history) still lands on its day.
        ("2026-11-01T15:00:00+00:00", BRISBANE, date(2026, 11, 2)),
        # No offset: already the subject's local time (the API's documented convention).
        ("2026-11-02T00:00:00", BRISBANE, date(2026, 11, 2)),
        # Seven fraction digits, as CentrePoint writes them.
        ("2026-11-01T14:00:00.0000000+00:00", BRISBANE, date(2026, 11, 2)),
        # The local date written with +00:00 (the documentation's example form): its date part,
        # also for zones 12 or more hours ahead of UTC, where "nearest local midnight" is a day late.
        ("2026-11-02T00:00:00+00:00", ZoneInfo("Pacific/Auckland"), date(2026, 11, 2)),
        ("2026-11-02T00:00:00.0000000+00:00", ZoneInfo("Pacific/Kiritimati"), date(2026, 11, 2)),
        ("2026-11-02T00:00:00Z", ZoneInfo("Etc/GMT+12"), date(2026, 11, 2)),
        # The UTC instant of local midnight 12+ hours ahead of UTC: the next local day.
        ("2026-11-01T11:00:00+00:00", ZoneInfo("Pacific/Auckland"), date(2026, 11, 2)),
        ("2026-11-01T10:00:00+00:00", ZoneInfo("Pacific/Kiritimati"), date(2026, 11, 2)),
        ("2026-11-01T11:15:00+00:00", ZoneInfo("Pacific/Chatham"), date(2026, 11, 2)),
    ],
)
def test_local_date(value: str, tz: ZoneInfo, expected: date) -> None:
    assert records.local_date(value, tz) == expected


def test_setting_number_is_stable_and_distinct() -> None:
    a = "ad1fda37-239d-48ad-581b-08d8556c9944"
    b = "AD1FDA37-239D-48AD-581B-08D8556C9945"
    assert records.setting_number(a) == records.setting_number(a.upper())
    assert records.setting_number(a) != records.setting_number("0d1fda37-239d-48ad-581b-08d8556c9944")
    assert records.setting_number(a) == records.setting_number(b)  # only the first 8 bytes count
    assert -(2**63) <= records.setting_number(a) < 2**63
    assert records.setting_number(None) == 0
    with pytest.raises(records.RecordError, match="not a GUID"):
        records.setting_number("setting-7")


def _record(**blocks: object) -> dict[str, object]:
    return {
        "id": 1, "studyId": 2775, "subjectId": 22518, "dailyStatisticsSettingId": "ad1fda37-239d-48ad-581b-08d8556c9944",
        "date": "2020-10-04T14:00:00+00:00",
        "epochAggregation": {"wearMinutes": 600.4, "nonWearMinutes": 839.6, "sleepMinutes": 0.0,
                             "wearFilteredVectorMagnitude": 28317.64},
        "firstEpochDateTimeUtc": "2020-10-05T06:16:00+00:00", "lastEpochDateTimeUtc": "2020-10-05T06:23:00+00:00",
        **blocks,
    }


def test_typed_columns_from_the_documented_blocks() -> None:
    crouter = {"wearFilteredVMSedentary": 295, "wearFilteredVMLight": 50, "wearFilteredVMModerate": 55,
               "wearFilteredVMVigorous": 20, "wearFilteredVMMVPA": 75}
    row = records.to_row(_record(crouterAggregations=[crouter],
                                 mavmAggregation={"wearFilteredSteps": 812},
                                 hildebrandMetCalorieAggregation={"wearMetsAverage": 1.4, "wearCalories": 310.5}),
                         "P002", BRISBANE, NOW)
    assert row["local_date"] == date(2020, 10, 5)
    assert (row["wear_minutes"], row["non_wear_minutes"], row["total_counts"]) == (600, 840, 28318)
    assert row["is_valid_day"] is True
    assert (row["steps"], row["mets"], row["calories"]) == (812, 1.4, 310.5)
    # Cut-point blocks are in seconds.
    assert (row["sedentary_minutes"], row["light_minutes"], row["mvpa_minutes"]) == (5, 1, 1)
    assert row["cutpoint_algorithm"] == "crouter"
    assert row["first_epoch_utc"] == datetime(2020, 10, 5, 6, 16, tzinfo=timezone.utc)
    assert set(row) == set(records.COLUMNS)


def test_freedson_counts_very_vigorous_as_vigorous() -> None:
    freedson = {"wearFilteredVASedentary": 600, "wearFilteredVALight": 300, "wearFilteredVAModerate": 120,
                "wearFilteredVAVigorous": 60, "wearFilteredVAVeryVigorous": 60}
    row = records.to_row(_record(freedsonAggregations=[freedson]), "P002", BRISBANE, NOW)
    assert (row["moderate_minutes"], row["vigorous_minutes"], row["mvpa_minutes"]) == (2, 2, 4)
    assert row["cutpoint_algorithm"] == "freedson"


def test_absent_blocks_give_null_not_zero() -> None:
    record = _record()
    record["epochAggregation"]["wearMinutes"] = 599.4  # type: ignore[index]
    row = records.to_row(record, "P002", BRISBANE, NOW)
    assert row["is_valid_day"] is False
    for column in ("steps", "mets", "calories", "sedentary_minutes", "mvpa_minutes", "cutpoint_algorithm"):
        assert row[column] is None
    table = records.as_arrow([row])
    assert table.schema == records.ARROW_SCHEMA and table.column("mvpa_minutes").null_count == 1
    assert records.as_arrow([]).num_rows == 0  # an empty day still has the schema


def test_record_without_date_or_epochs_is_named_in_the_error() -> None:
    record = _record()
    del record["date"], record["firstEpochDateTimeUtc"], record["lastEpochDateTimeUtc"]
    with pytest.raises(records.RecordError, match="daily statistic 1 of P002 has no 'date' and no epoch times"):
        records.to_row(record, "P002", BRISBANE, NOW)
    assert records.split_by_local_day([record], BRISBANE) == ({}, [record])


def test_epochs_place_a_record_without_date() -> None:
    record = _record()
    del record["date"]
    assert records.to_row(record, "P002", BRISBANE, NOW)["local_date"] == date(2020, 10, 5)


def test_epochs_without_offset_are_utc() -> None:
    record = _record(firstEpochDateTimeUtc="2020-10-05T13:30:00", lastEpochDateTimeUtc="2020-10-05T14:30:00")
    row = records.to_row(record, "P002", BRISBANE, NOW)
    assert row["first_epoch_utc"] == datetime(2020, 10, 5, 13, 30, tzinfo=timezone.utc)
    assert row["local_date"] == date(2020, 10, 6)  # 00:00 in Brisbane: the epochs decide, not the date


def test_an_unreadable_date_is_kept_aside_even_with_epochs() -> None:
    record = _record(date="sometime")
    assert records.split_by_local_day([record], BRISBANE) == ({}, [record])
    with pytest.raises(records.RecordError, match="daily statistic 1 of P002 is malformed"):
        records.rows_by_day([record], "P002", BRISBANE, NOW)


def test_a_repeated_day_and_setting_keeps_one_row() -> None:
    first, second = _record(), _record()
    second["epochAggregation"] = {"wearMinutes": 700.0}
    by_day = records.rows_by_day([first, second], "P002", BRISBANE, NOW)
    assert [r["wear_minutes"] for r in by_day[date(2020, 10, 5)]] == [700]


# --- both readings of ``date`` x every offset x DST days, on the simulator's own records ---------
# Etc/GMT+N is UTC-N (POSIX sign): together they give every whole-hour offset from -12 to +14.
WHOLE_HOUR_ZONES = [f"Etc/GMT{-h:+d}" if h else "Etc/UTC" for h in range(-12, 15)]
#: Zones with odd offsets or DST changes, each with a window of days around one of its changes.
DST_ZONES = {
    "America/New_York": date(2026, 11, 1),  # EDT -> EST
    "Europe/London": date(2026, 3, 29),  # GMT -> BST at 01:00
    "Pacific/Auckland": date(2026, 9, 27),  # +12 -> +13
    "Pacific/Chatham": date(2026, 9, 27),  # +12:45 -> +13:45
    "Australia/Lord_Howe": date(2026, 10, 4),  # +10:30 -> +11 (a half-hour change)
    "America/Santiago": date(2026, 9, 6),  # -4 -> -3 at 00:00: that local midnight does not exist
    "America/St_Johns": date(2026, 11, 1),  # -2:30 -> -3:30
    "Asia/Kathmandu": date(2026, 11, 1),  # +5:45, no DST
}
ZONE_WINDOWS = [(z, date(2026, 11, 1)) for z in WHOLE_HOUR_ZONES] + list(DST_ZONES.items())


def _simulated(zone: str, around: date, reading: str) -> tuple[CentrePointSimulator, int, list[date]]:
    days = [around + timedelta(days=d) for d in range(-2, 3)]
    subject = Participant("Z1", "S", zone, days[0], days[-1], centrepoint_study_id="9", centrepoint_subject_id="901")
    sim = CentrePointSimulator([subject], data_end=days[-1] + timedelta(days=1), date_reading=reading)  # type: ignore[arg-type]
    return sim, 901, days


@pytest.mark.parametrize("reading", DATE_READINGS)
@pytest.mark.parametrize(("zone", "around"), ZONE_WINDOWS, ids=[z for z, _ in ZONE_WINDOWS])
@pytest.mark.parametrize("with_epochs", [True, False], ids=["epochs", "date-only"])
def test_every_record_lands_on_its_local_day(zone: str, around: date, reading: str, with_epochs: bool) -> None:
    sim, subject, days = _simulated(zone, around, reading)
    tz = ZoneInfo(zone)
    served = sim.daily_statistics(subject, None, None, None)
    expected = {day: sorted(sim.daily_statistic(subject, day, i)["id"] for i in range(len(sim.settings_for(subject))))
                for day in days}
    assert sorted(r["id"] for r in served) == sorted(i for ids in expected.values() for i in ids)
    if not with_epochs:
        served = [{k: v for k, v in r.items() if "Epoch" not in k and k != "epochAggregation"} for r in served]
    by_day, unattributed = records.split_by_local_day(served, tz)
    assert unattributed == []
    assert {day: sorted(r["id"] for r in items) for day, items in by_day.items()} == expected
    rows = records.rows_by_day(served, "Z1", tz, NOW)
    assert {day: sorted(r["daily_statistic_id"] for r in items) for day, items in rows.items()} == expected
    if with_epochs:  # the epochs the simulator sends really lie inside the day they land on
        for day, items in rows.items():
            start = datetime.combine(day, time(0), tz)
            end = datetime.combine(day + timedelta(days=1), time(0), tz)
            assert all(start <= r["first_epoch_utc"] <= r["last_epoch_utc"] < end for r in items)


def test_the_two_readings_differ_where_the_old_rule_failed() -> None:
    """Auckland in summer (UTC+13): the local-date form names the day itself, the instant form
    the day before in UTC; both land on the same local day."""
    day = date(2026, 11, 2)
    written = {}
    for reading in DATE_READINGS:
        sim, subject, _ = _simulated("Pacific/Auckland", day, reading)
        record = sim.daily_statistic(subject, day, 0)
        written[reading] = record["date"]
        assert records.record_local_date(record, ZoneInfo("Pacific/Auckland")) == day
        assert day in records.date_readings(record["date"], ZoneInfo("Pacific/Auckland"))
    assert written == {"utc_instant": "2026-11-01T11:00:00+00:00", "local_date": "2026-11-02T00:00:00+00:00"}
