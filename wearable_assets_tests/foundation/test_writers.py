"""The shared write paths: idempotent TimescaleDB replace/upsert and lake partition replace."""

from datetime import date, datetime, timedelta, timezone

import duckdb
import psycopg
import pyarrow as pa
import pytest

from wearable_assets.storage.lake import PartitionTable
from wearable_assets.storage.resources import LakeResource, TimescaleResource

DAY = date(2026, 11, 1)
START = datetime(2026, 11, 1, 4, tzinfo=timezone.utc)
COLUMNS = ["participant_id", "metric", "ts", "value", "utc_offset_min", "source", "device"]
WHERE = "participant_id = %s AND ts >= %s AND ts < %s"


def hr_rows(participant: str, n: int, value: float = 60.0):
    return [(participant, "heart_rate", START + timedelta(seconds=i), value + i % 5, -240, "google_health", None)
            for i in range(n)]


def count(timescale: TimescaleResource, participant: str) -> int:
    return timescale.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE participant_id = %s", (participant,))[0][0]


def test_replace_rows_is_idempotent_per_partition(timescale: TimescaleResource) -> None:
    window = ("P1", START, START + timedelta(days=1))
    timescale.replace_rows("wearables.fitbit_intraday", where=WHERE, params=window, columns=COLUMNS, rows=hr_rows("P1", 500))
    timescale.replace_rows("wearables.fitbit_intraday", where=WHERE, params=("P2",) + window[1:], columns=COLUMNS,
                           rows=hr_rows("P2", 10))
    deleted, inserted = timescale.replace_rows(
        "wearables.fitbit_intraday", where=WHERE, params=window, columns=COLUMNS, rows=hr_rows("P1", 400, 70.0)
    )
    assert (deleted, inserted) == (500, 400)
    assert count(timescale, "P1") == 400 and count(timescale, "P2") == 10
    assert timescale.fetch("SELECT min(value) FROM wearables.fitbit_intraday WHERE participant_id = 'P1'")[0][0] == 70.0


def test_replace_rows_failure_keeps_previous_rows(timescale: TimescaleResource) -> None:
    window = ("P1", START, START + timedelta(days=1))
    timescale.replace_rows("wearables.fitbit_intraday", where=WHERE, params=window, columns=COLUMNS, rows=hr_rows("P1", 100))

    def rows_then_crash():
        yield from hr_rows("P1", 50, 90.0)
        raise RuntimeError("parser crashed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        timescale.replace_rows("wearables.fitbit_intraday", where=WHERE, params=window, columns=COLUMNS, rows=rows_then_crash())
    assert count(timescale, "P1") == 100
    assert timescale.fetch("SELECT max(value) FROM wearables.fitbit_intraday WHERE participant_id = 'P1'")[0][0] < 90


def test_duplicate_samples_are_refused_by_the_unique_key(timescale: TimescaleResource) -> None:
    rows = hr_rows("P1", 3) + hr_rows("P1", 1)
    with pytest.raises(psycopg.errors.UniqueViolation):
        timescale.replace_rows("wearables.fitbit_intraday", where=WHERE, params=("P1", START, START + timedelta(days=1)),
                               columns=COLUMNS, rows=rows)
    assert count(timescale, "P1") == 0


def test_upsert_rows_updates_only_changed_rows(timescale: TimescaleResource) -> None:
    cols = ["participant_id", "study_id", "time_zone", "enrolled_from"]
    rows = [("P1", "S", "UTC", DAY), ("P2", "S", "UTC", DAY)]
    assert timescale.upsert_rows("wearables.participants", key=["participant_id"], columns=cols, rows=rows) == 2
    assert timescale.upsert_rows("wearables.participants", key=["participant_id"], columns=cols, rows=rows) == 0
    rows[1] = ("P2", "S", "Asia/Tokyo", DAY)
    assert timescale.upsert_rows("wearables.participants", key=["participant_id"], columns=cols, rows=rows) == 1


def _table(values: list[float], day: date = DAY) -> PartitionTable:
    data = pa.table({"participant_id": ["P1"] * len(values), "local_date": pa.array([day] * len(values), pa.date32()),
                     "value": values})
    return PartitionTable("samples", data, {"participant_id": "P1", "local_date": day})


def _lake_rows(lake: LakeResource, table: str = "samples") -> list[tuple]:
    return duckdb.sql(
        f"SELECT date, sum(value), count(*) FROM read_parquet('{lake.table_glob(table)}', hive_partitioning=true) "
        "GROUP BY date ORDER BY date"
    ).fetchall()


def test_lake_rerun_replaces_participant_day(lake: LakeResource) -> None:
    lake.write_partition("P1", DAY, [_table([1.0, 2.0, 3.0])])
    lake.write_partition("P1", date(2026, 11, 2), [_table([9.0], date(2026, 11, 2))])
    (second,) = lake.write_partition("P1", DAY, [_table([4.0, 5.0])])
    assert len(second.files_written) == 1 and len(second.files_removed) == 1
    assert _lake_rows(lake) == [(DAY, 9.0, 2), (date(2026, 11, 2), 9.0, 1)]
    # No rows any more: the participant-day's files go, the other day stays.
    (gone,) = lake.write_partition("P1", DAY, [_table([])])
    assert gone.rows == 0 and len(gone.files_removed) == 1
    assert _lake_rows(lake) == [(date(2026, 11, 2), 9.0, 1)]


def test_lake_writes_several_tables_in_one_load(lake: LakeResource) -> None:
    other = PartitionTable("others", _table([7.0]).data, {"participant_id": "P1", "local_date": DAY})
    writes = lake.write_partition("P1", DAY, [_table([1.0, 2.0]), other])
    assert [w.table for w in writes] == ["samples", "others"] and [w.rows for w in writes] == [2, 1]
    assert writes[0].load_id == writes[1].load_id is not None
    assert _lake_rows(lake, "samples") == [(DAY, 3.0, 2)] and _lake_rows(lake, "others") == [(DAY, 7.0, 1)]


def test_lake_refuses_data_without_its_scope_columns(lake: LakeResource) -> None:
    bad = PartitionTable("samples", pa.table({"value": [1.0]}), {"participant_id": "P1", "local_date": DAY})
    with pytest.raises(ValueError, match=r"scope columns \['local_date', 'participant_id'\]"):
        lake.write_partition("P1", DAY, [bad])


def test_iceberg_scope_is_the_participant_day() -> None:
    assert _table([1.0]).scope_sql() == "\"participant_id\" = 'P1' AND \"local_date\" = DATE '2026-11-01'"
    odd = PartitionTable("t", pa.table({}), {"study_id": "it's"})
    assert odd.scope_sql() == "\"study_id\" = 'it''s'"


def test_lake_keeps_raw_payloads_byte_for_byte(lake: LakeResource) -> None:
    body = b'{"dataPoints": [{"truncated'  # malformed on purpose: still kept
    key = lake.land_raw("google_health", "P1", DAY, "heart-rate", body)
    assert key.endswith("raw/google_health/participant_id=P1/date=2026-11-01/heart-rate.json.gz")
    assert lake.read_raw("google_health", "P1", DAY, "heart-rate") == body
    lake.land_raw("google_health", "P1", DAY, "heart-rate", {"dataPoints": []})
    assert lake.read_raw("google_health", "P1", DAY, "heart-rate") == b'{"dataPoints":[]}'
    lake.land_raw("google_health", "P1", DAY, "fetch=1/steps", b"{}")
    assert lake.list_raw("google_health", "P1", DAY) == ["fetch=1/steps", "heart-rate"]
    lake.delete_raw("google_health", "P1", DAY, "heart-rate")
    assert lake.list_raw("google_health", "P1", DAY) == ["fetch=1/steps"]
    assert lake.list_raw("google_health", "P1", date(2026, 11, 2)) == []
