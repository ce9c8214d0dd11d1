"""The routing rules and time parsing of /data, without a database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from wearable_assets.serving.config import ServingConfig
from wearable_assets.serving.routing import (
    DAILY_TABLE,
    HOURLY_TABLE,
    MINUTE_TABLE,
    RAW_TABLE,
    BadRequest,
    Resolution,
    choose_route,
    parse_time,
)

CONFIG = ServingConfig(dsn="postgresql://unused")
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("span", "resolution", "table"),
    [
        (timedelta(minutes=5), Resolution.RAW, RAW_TABLE),
        (timedelta(days=1), Resolution.RAW, RAW_TABLE),  # thresholds are inclusive
        (timedelta(days=1, seconds=1), Resolution.HOURLY, HOURLY_TABLE),
        (timedelta(days=60), Resolution.HOURLY, HOURLY_TABLE),
        (timedelta(days=60, seconds=1), Resolution.DAILY, DAILY_TABLE),
        (timedelta(days=800), Resolution.DAILY, DAILY_TABLE),
    ],
)
def test_auto_routes_by_span(span: timedelta, resolution: Resolution, table: str) -> None:
    route = choose_route(Resolution.AUTO, T0, T0 + span, CONFIG)
    assert (route.resolution, route.table, route.from_raw) == (resolution, table, False)


def test_thresholds_are_configurable() -> None:
    config = ServingConfig(dsn="x", auto_raw_max=timedelta(hours=6), auto_hourly_max=timedelta(days=14))
    assert choose_route(Resolution.AUTO, T0, T0 + timedelta(hours=7), config).resolution is Resolution.HOURLY
    assert choose_route(Resolution.AUTO, T0, T0 + timedelta(days=15), config).resolution is Resolution.DAILY


def test_inconsistent_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="raw threshold"):
        ServingConfig(dsn="x", auto_raw_max=timedelta(days=2), auto_hourly_max=timedelta(days=1))
    with pytest.raises(ValueError, match="refuses"):
        ServingConfig(dsn="x", auto_raw_max=timedelta(days=3), raw_max=timedelta(days=2))


def test_explicit_resolution_is_kept() -> None:
    week = T0 + timedelta(days=7)
    assert choose_route(Resolution.RAW, T0, week, CONFIG).table == RAW_TABLE
    assert choose_route(Resolution.DAILY, T0, T0 + timedelta(hours=2), CONFIG).table == DAILY_TABLE
    assert choose_route(Resolution.HOURLY, T0, week, CONFIG, from_raw=True).table == RAW_TABLE


def test_one_minute_reads_the_aggregate_only_where_it_exists() -> None:
    day = T0 + timedelta(days=1)
    on_tsl = choose_route(Resolution.MINUTE, T0, day, CONFIG, minute_aggregate=True)
    assert (on_tsl.resolution, on_tsl.table, on_tsl.from_raw) == (Resolution.MINUTE, MINUTE_TABLE, False)
    on_apache = choose_route(Resolution.MINUTE, T0, day, CONFIG, minute_aggregate=False)
    assert (on_apache.resolution, on_apache.table, on_apache.from_raw) == (Resolution.MINUTE, RAW_TABLE, True)
    asked_raw = choose_route(Resolution.MINUTE, T0, day, CONFIG, from_raw=True, minute_aggregate=True)
    assert (asked_raw.table, asked_raw.from_raw) == (RAW_TABLE, True)
    # auto never picks 1min, whatever exists.
    assert all(choose_route(Resolution.AUTO, T0, T0 + span, CONFIG, minute_aggregate=True).resolution
               is not Resolution.MINUTE for span in (timedelta(minutes=5), timedelta(days=2), timedelta(days=90)))
    with pytest.raises(BadRequest, match=r"resolution=1min is limited to 60 days .* spans 61 days"):
        choose_route(Resolution.MINUTE, T0, T0 + timedelta(days=61), CONFIG, minute_aggregate=True)


def test_raw_over_the_cap_is_refused_with_advice() -> None:
    with pytest.raises(BadRequest, match=r"limited to 7 days .* spans 8 days.*resolution=1h"):
        choose_route(Resolution.RAW, T0, T0 + timedelta(days=8), CONFIG)


def test_empty_or_reversed_window_is_refused() -> None:
    with pytest.raises(BadRequest, match="must be before end"):
        choose_route(Resolution.AUTO, T0, T0, CONFIG)
    with pytest.raises(BadRequest, match="must be before end"):
        choose_route(Resolution.AUTO, T0, T0 - timedelta(hours=1), CONFIG)


def test_from_raw_makes_no_sense_for_raw() -> None:
    with pytest.raises(BadRequest, match="from_raw"):
        choose_route(Resolution.AUTO, T0, T0 + timedelta(hours=1), CONFIG, from_raw=True)


def test_parse_time_reads_offsets_and_local_dates() -> None:
    assert parse_time("start", "2026-11-01T05:00:00Z", NEW_YORK) == datetime(2026, 11, 1, 5, tzinfo=timezone.utc)
    assert parse_time("start", "2026-11-01T07:00:00+02:00", NEW_YORK) == datetime(2026, 11, 1, 5, tzinfo=timezone.utc)
    # a bare date is the participant's local midnight (EDT, UTC-4, on 1 November 2026)
    assert parse_time("start", "2026-11-01", NEW_YORK) == datetime(2026, 11, 1, 4, tzinfo=timezone.utc)
    # ... and a time without offset their wall clock (EST after the DST change)
    assert parse_time("start", "2026-11-02T08:30", NEW_YORK) == datetime(2026, 11, 2, 13, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-11-01T25:00", "1 Nov 2026", "2026/11/01"])
def test_parse_time_refuses_garbage_with_an_example(text: str) -> None:
    with pytest.raises(BadRequest, match=r"not an ISO 8601 .*e\.g\. 2026-11-01"):
        parse_time("start", text, NEW_YORK)


def test_parse_time_requires_a_value_and_sane_years() -> None:
    with pytest.raises(BadRequest, match="start is required"):
        parse_time("start", None, NEW_YORK)
    with pytest.raises(BadRequest, match="1970-2200"):
        parse_time("end", "0001-01-01", NEW_YORK)
