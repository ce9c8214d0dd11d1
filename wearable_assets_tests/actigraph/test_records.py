"""Day attribution and typed columns, on hand-written records (no server)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from wearable_assets.actigraph import records

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


def test_record_without_date_is_named_in_the_error() -> None:
    record = _record()
    del record["date"]
    with pytest.raises(records.RecordError, match="daily statistic 1 of P002 has no 'date'"):
        records.to_row(record, "P002", BRISBANE, NOW)


def test_a_repeated_day_and_setting_keeps_one_row() -> None:
    first, second = _record(), _record()
    second["epochAggregation"] = {"wearMinutes": 700.0}
    by_day = records.rows_by_day([first, second], "P002", BRISBANE, NOW)
    assert [r["wear_minutes"] for r in by_day[date(2020, 10, 5)]] == [700]
