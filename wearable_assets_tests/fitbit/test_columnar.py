"""The columnar paths (Arrow point lists, numpy binary COPY) against the per-point code they replace.

Every page here is parsed twice: with ``google_health_columnar`` and with it switched off (the
per-point parser that was the only path before). Rows, drop counters and heart-rate minutes
must be identical, on a DST day, with duplicates, out-of-window points and several devices;
pages the fast path must not read (odd shapes) must fall back, and still load or fail the same.
The COPY encoder is checked by loading through it and reading the rows back from TimescaleDB.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from wearable_assets.fitbit import pgcopy
from wearable_assets.fitbit.canonical import (
    INTRADAY_COLUMNS,
    INTRADAY_TABLE,
    DayWindow,
    ParsedDay,
    Payload,
    stream_batches,
)
from wearable_assets.fitbit.google_health import columnar as google_health_columnar
from wearable_assets.fitbit.google_health import parse as google_health_parse
from wearable_assets.fitbit.legacy import parse as legacy_parse
from wearable_assets.storage.resources import TimescaleResource

FALL_BACK = date(2026, 11, 1)  # America/New_York: 25 hours, 01:00-02:00 local twice
ZONE = "America/New_York"


def _rfc3339(ts: datetime, fraction: bool = False) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (".250" if fraction else "") + "Z"


def _hr_point(ts: datetime, bpm: int, *, source: dict[str, Any] | None = None, offset: str | None = None,
              fraction: bool = False) -> dict[str, Any]:
    offset = offset or ("-14400s" if ts < datetime(2026, 11, 1, 6, tzinfo=timezone.utc) else "-18000s")
    point: dict[str, Any] = {"heartRate": {"beatsPerMinute": str(bpm),
                                           "sampleTime": {"physicalTime": _rfc3339(ts, fraction), "utcOffset": offset}}}
    if source is not None:
        point["dataSource"] = source
    return point


WATCH = {"platform": "FITBIT", "device": {"displayName": "Charge 6"}}
PHONE = {"platform": "GOOGLE_FIT", "device": {}}


def _pages() -> list[tuple[str, bytes]]:
    """Heart-rate pages of a fall-back day: every 7 s over 26 h (so some before and after the
    25-hour window), overlapping pages (duplicates across pages), an in-page duplicate, mixed
    devices, no dataSource, fractional seconds, and steps with a scaled sibling (distance)."""
    window = DayWindow.of(FALL_BACK, ZONE)
    stamps = [window.start - timedelta(minutes=30) + timedelta(seconds=7 * i) for i in range(26 * 3600 // 7)]
    points = [_hr_point(t, 50 + i % 90, source=(WATCH, PHONE, None, {})[i % 4], fraction=i % 11 == 0)
              for i, t in enumerate(stamps)]
    points.insert(10, dict(points[10]))  # same instant twice in one page
    third = len(points) // 3
    pages = [points[:third + 50], points[third:2 * third], points[2 * third - 5:]]
    out = [(f"heart-rate.list.p{i:03d}", orjson.dumps({"dataPoints": page, "nextPageToken": "x"})) for i, page in
           enumerate(pages)]
    minutes = [window.start + timedelta(minutes=m) for m in range(-3, window.minutes + 3)]
    for data_type, field, union in (("steps", "count", "steps"), ("distance", "millimeters", "distance")):
        intervals = [{union: {field: str(m * 37 % 1000),
                              "interval": {"startTime": _rfc3339(t), "startUtcOffset": "-18000s"}},
                      "dataSource": WATCH} for m, t in enumerate(minutes)]
        out.append((f"{data_type}.list.p000", orjson.dumps({"dataPoints": intervals})))
    return out


Parsed = tuple[ParsedDay, list[tuple]]


def _parse(pages: list[tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch, *, columnar: bool) -> Parsed:
    """The day and its intraday rows (in load order), with or without the columnar path."""
    with monkeypatch.context() as patch:
        if not columnar:
            patch.setattr(google_health_columnar, "parse_points", lambda *args: None)
        day = ParsedDay(window=DayWindow.of(FALL_BACK, ZONE), participant_id="P001", source="google_health")
        payloads = [Payload(name, body, orjson.loads) for name, body in pages]
        rows = [row for batch in stream_batches(day, google_health_parse.parse_payload, payloads)
                for row in batch.rows(day.participant_id, day.source)]
        return day, rows


def _same(fast_parsed: Parsed, slow_parsed: Parsed) -> None:
    (fast, fast_rows), (slow, slow_rows) = fast_parsed, slow_parsed
    assert fast_rows == slow_rows
    assert fast.dropped == slow.dropped
    assert fast.rows_per_metric() == slow.rows_per_metric()
    assert fast.hr_completeness() == slow.hr_completeness()
    assert fast.time_range() == slow.time_range()


def test_columnar_points_equal_the_per_point_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = _pages()
    used: list[bool] = []
    real = google_health_columnar.parse_points
    monkeypatch.setattr(google_health_columnar, "parse_points",
                        lambda *args: used.append(real(*args) is not None) or real(*args))
    fast, rows = parsed = _parse(pages, monkeypatch, columnar=True)
    assert used and all(used)  # every page really went through the Arrow path
    _same(parsed, _parse(pages, monkeypatch, columnar=False))
    window = DayWindow.of(FALL_BACK, ZONE)
    assert window.minutes == 1500 and fast.hr_completeness() == 100.0
    # The truth, from how the pages were built: every instant once, duplicates dropped.
    stamps = [orjson.loads(body)["dataPoints"] for name, body in pages if name.startswith("heart-rate")]
    instants = [p["heartRate"]["sampleTime"]["physicalTime"] for page in stamps for p in page]
    inside = [t for t in instants if window.start <= datetime.fromisoformat(t) < window.end]
    assert fast.rows_per_metric()["heart_rate"] == len(set(inside))
    assert fast.dropped["heart_rate:outside_day"] == len(instants) - len(inside)
    assert fast.dropped["heart_rate:duplicate"] == len(inside) - len(set(inside)) > 50
    assert fast.dropped["steps:outside_day"] == 6
    devices = {row[6] for row in rows if row[1] == "heart_rate"}
    assert devices == {"FITBIT:Charge 6", "GOOGLE_FIT", None}


@pytest.mark.parametrize("change", [
    lambda p: p["heartRate"].update(beatsPerMinute=72),  # a number where the API sends a string
    lambda p: p["heartRate"]["sampleTime"].update(physicalTime="2026-11-01T12:00:00+00:00"),
    lambda p: p["heartRate"]["sampleTime"].pop("utcOffset"),  # offset from the roster zone
    lambda p: p["heartRate"].update(beatsPerMinute="72.5"),
    lambda p: p.update(dataSource={"platform": "FITBIT", "device": {"displayName": "Charge é"}}),
])
def test_unusual_pages_fall_back_and_load_the_same(change: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    window = DayWindow.of(FALL_BACK, ZONE)
    points = [_hr_point(window.start + timedelta(seconds=30 * i), 60 + i, source=WATCH) for i in range(50)]
    change(points[7])
    body = json.dumps({"dataPoints": points}, ensure_ascii=False).encode()
    assert google_health_columnar.parse_points(body, "heartRate", "sampleTime",
                                               ("physicalTime", "utcOffset"), ("beatsPerMinute",)) is None
    pages = [("heart-rate.list.p000", body)]
    _same(_parse(pages, monkeypatch, columnar=True), _parse(pages, monkeypatch, columnar=False))


@pytest.mark.parametrize("body", [
    b'{"dataPoints": [{"heartRate": {"beatsPerMinute": null}}]}',
    b'{"dataPoints": [{"heartRate": {"sampleTime": {"physicalTime": "2026-02-30T00:00:00Z", '
    b'"utcOffset": "0s"}, "beatsPerMinute": "60"}}]}',
    b'{"dataPoints": {"heartRate": {}}}',
    b'{"dataPoints": [{"steps": {}}]}',
])
def test_wrongly_shaped_pages_still_fail_with_the_payload_error(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(google_health_parse.PayloadError, match="heart-rate.list.p000"):
        _parse([("heart-rate.list.p000", body)], monkeypatch, columnar=True)


def test_binary_copy_encoding_round_trips(timescale: TimescaleResource, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows COPYed through ``pgcopy`` read back exactly as the tuples psycopg would have sent."""
    day = ParsedDay(window=DayWindow.of(FALL_BACK, ZONE), participant_id="P\u00e9-1", source="google_health")
    payloads = [Payload(name, body, orjson.loads) for name, body in _pages()]
    batches = list(stream_batches(day, google_health_parse.parse_payload, payloads))
    expected = sorted(row for batch in batches for row in batch.rows(day.participant_id, day.source))
    with timescale.connect() as conn:
        conn.execute(f"DELETE FROM {INTRADAY_TABLE} WHERE participant_id = %s", (day.participant_id,))
        with conn.cursor() as cur, cur.copy(f"COPY {INTRADAY_TABLE} ({', '.join(INTRADAY_COLUMNS)}) "
                                            "FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pgcopy.HEADER)
            for batch in batches:
                copy.write(pgcopy.encode(batch, day.participant_id, day.source))
            copy.write(pgcopy.TRAILER)
        stored = conn.execute(f"SELECT {', '.join(INTRADAY_COLUMNS)} FROM {INTRADAY_TABLE} "
                              "WHERE participant_id = %s ORDER BY 1, 2, 3", (day.participant_id,)).fetchall()
        conn.rollback()
    assert len(stored) == len(expected) > 9000
    assert sorted(stored) == expected


def _legacy_heart(times: list[str], values: list[Any]) -> bytes:
    return orjson.dumps({"activities-heart": [{"value": {"restingHeartRate": 55}}],
                         "activities-heart-intraday": {"dataset": [{"time": t, "value": v} for t, v in
                                                                   zip(times, values)]}})


def _parse_legacy(body: bytes, monkeypatch: pytest.MonkeyPatch, *, columnar: bool, arrow: bool = True) -> Parsed:
    """Parsed with the Arrow reader (``arrow``), with numpy on the decoded lists, or per entry."""
    with monkeypatch.context() as patch:
        if not columnar:
            patch.setattr(legacy_parse._LocalDay, "columns_of_chars", lambda self, chars, values: None)
        if not arrow:
            patch.setattr(legacy_parse, "_parse_intraday_columnar", lambda day, name, body: False)
        day = ParsedDay(window=DayWindow.of(FALL_BACK, ZONE), participant_id="P001", source="fitbit_legacy")
        rows = [row for batch in stream_batches(day, legacy_parse.parse_payload, [Payload("heart", body, orjson.loads)])
                for row in batch.rows(day.participant_id, day.source)]
        return day, rows


@pytest.mark.parametrize("arrow", [True, False])
def test_legacy_dataset_columns_equal_the_per_entry_path(arrow: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fall-back day's wall clock: 01:00-01:59 appears twice (second pass = fold 1)."""
    clock = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(0, 60, 9)]
    repeat = [t for t in clock if t.startswith("01:")]
    split = clock.index("02:00:00")
    times = clock[:split] + repeat + clock[split:]
    values = [40 + i % 100 for i in range(len(times))]
    values[5] = 61.5  # a float among ints
    used: list[bool] = []
    real = legacy_parse._LocalDay.columns_of_chars
    monkeypatch.setattr(legacy_parse._LocalDay, "columns_of_chars",
                        lambda self, c, v: used.append(real(self, c, v) is not None) or real(self, c, v))
    body = _legacy_heart(times, values)
    fast, rows = parsed = _parse_legacy(body, monkeypatch, columnar=True, arrow=arrow)
    assert used == [True]
    _same(parsed, _parse_legacy(body, monkeypatch, columnar=False))
    heart = [row for row in rows if row[1] == "heart_rate"]
    assert len(heart) == len(times) and fast.hr_completeness() == 100.0  # 25 distinct hours of minutes
    assert {row[4] for row in heart} == {-240, -300}
    assert [row for row in rows if row[1] == "resting_heart_rate"][0][3] == 55.0


def test_legacy_activity_summary_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Activity datasets carry the day's total as a string; it lands in ``daily_totals``."""
    body = orjson.dumps({"activities-distance": [{"dateTime": "2026-11-01", "value": "5.25"}],
                         "activities-distance-intraday": {"dataset": [{"time": "00:00:00", "value": 0.01},
                                                                      {"time": "00:01:00", "value": 2}]}})
    for arrow in (True, False):
        with monkeypatch.context() as patch:
            day = ParsedDay(window=DayWindow.of(FALL_BACK, ZONE), participant_id="P001", source="fitbit_legacy")
            if not arrow:
                patch.setattr(legacy_parse, "_parse_intraday_columnar", lambda day, name, body: False)
            assert legacy_parse._parse_intraday_columnar(day, "distance", body) is arrow
            if not arrow:
                legacy_parse.parse_payload(day, Payload("distance", body, orjson.loads))
            rows = [row for batch in day.drain() for row in batch.rows("P001", "fitbit_legacy")]
            assert day.daily_totals == {"distance_m": 5250.0}
            assert [row[3] for row in rows] == [10.0, 2000.0]


@pytest.mark.parametrize("times, values", [
    (["00:00:00", "00:00:01", "24:00:00"], [60, 61, 62]),  # hour 24: the per-entry path's business
    (["00:00:00", "0:00:01", "00:00:02"], [60, 61, 62]),
    (["00:00:00", "00:00:01", "00:00:02"], [60, "61", 62]),
    (["00:00:00", "00:00:01", "00:00:02"], [60, None, 62]),
    (["00:00:00", "00:00:01", "00:00:02.000"], [60, 61, 62]),
])
def test_legacy_unusual_datasets_take_the_per_entry_path(times: list[str], values: list[Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = legacy_parse._LocalDay(FALL_BACK, DayWindow.of(FALL_BACK, ZONE).tz)
    assert clock.columns(times, values) is None
    body = _legacy_heart(times, values)
    day = ParsedDay(window=DayWindow.of(FALL_BACK, ZONE), participant_id="P001", source="fitbit_legacy")
    assert not legacy_parse._parse_intraday_columnar(day, "heart", body)
    try:
        fast = _parse_legacy(body, monkeypatch, columnar=True)
    except legacy_parse.PayloadError as exc:
        with pytest.raises(legacy_parse.PayloadError, match=str(exc).split("(")[0]):
            _parse_legacy(body, monkeypatch, columnar=False)
    else:
        _same(fast, _parse_legacy(body, monkeypatch, columnar=False))


@pytest.mark.parametrize("body", [b'{"dataPoints": [], "nextPageToken": "t"}', b'{"nextPageToken": "t"}', b"{}"])
def test_empty_pages(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages without points (the API sends them, token and all) add nothing either way."""
    fast = _parse([("heart-rate.list.p000", body)], monkeypatch, columnar=True)
    _same(fast, _parse([("heart-rate.list.p000", body)], monkeypatch, columnar=False))
    assert fast[1] == [] and not fast[0].dropped
