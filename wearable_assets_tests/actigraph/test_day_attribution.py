"""Day attribution end to end (simulator -> dlt -> lake -> TimescaleDB -> local-date check) under
both readings of DailyStatistics ``date`` the documentation allows, for every whole-hour UTC
offset from -12 to +14, the odd ones (+5:45, +12:45, +13:45, -2:30) on DST change days: every
record lands on its own local day, once, none lost.

Subjects have data the day before and after, which the asset fetches too (it widens its query
by a day each side), so a record filed on a neighbouring day shows as a missing or extra row of
the day materialised."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import duckdb
import pytest

from wearable_assets.actigraph.ingest import LAKE_TABLE
from wearable_assets.actigraph.resources import CentrePointResource
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.rollups import queries, refresh
from wearable_assets.roster import Participant
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.centrepoint import DATE_READINGS, CentrePointSimulator
from wearable_assets_tests.actigraph.conftest import DATA_END
from wearable_assets_tests.actigraph.test_assets import materialize
from wearable_assets_tests.conftest import add_participants

# Etc/GMT+N is UTC-N (POSIX sign).
WHOLE_HOURS = [f"Etc/GMT{-h:+d}" if h else "Etc/UTC" for h in range(-12, 15)]
#: Windows of three days around a DST change, with the named zones that matter there.
WINDOWS = {
    # New York and St John's leave DST on 1 November; Auckland (+13), Chatham (+13:45) and
    # Kiritimati (+14) are 13-14 hours ahead of UTC, where the old rule filed days a day late.
    "us-dst-end": (date(2026, 11, 1), ["America/New_York", "America/St_Johns", "Pacific/Auckland",
                                       "Pacific/Chatham", "Pacific/Kiritimati", "Asia/Kathmandu"]),
    # Auckland (+12 -> +13) and Chatham (+12:45 -> +13:45) enter DST on 27 September.
    "nz-dst-start": (date(2026, 9, 27), ["Pacific/Auckland", "Pacific/Chatham", "Asia/Kathmandu"]),
}


def _roster(zones: list[str], days: list[date]) -> list[Participant]:
    first, last = days[0] - timedelta(days=1), days[-1] + timedelta(days=1)
    return [Participant(f"T{n:02d}", "S-DAYS", zone, first, last, centrepoint_study_id="3001",
                        centrepoint_subject_id=str(30001 + n)) for n, zone in enumerate(zones)]


@pytest.fixture(params=[(r, w) for r in DATE_READINGS for w in WINDOWS], ids=lambda p: f"{p[0]}-{p[1]}")
def world(request: pytest.FixtureRequest, timescale: TimescaleResource, instance: dg.DagsterInstance,
          lake: LakeResource, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    reading, window = request.param
    around, named = WINDOWS[window]
    days = [around]  # the DST change day; its neighbours are only in the API
    # Every whole-hour offset around the US change; a spread of them around the NZ one.
    roster = _roster((WHOLE_HOURS if window == "us-dst-end" else WHOLE_HOURS[::4]) + named, days)
    upsert_participants(timescale, roster)
    add_participants(instance, *(p.participant_id for p in roster))
    with CentrePointSimulator(roster, data_end=DATA_END, date_reading=reading) as sim:
        monkeypatch.setenv("CENTREPOINT_BASE_URL", sim.url)
        monkeypatch.setenv("CENTREPOINT_TOKEN_URL", sim.token_url)
        monkeypatch.setenv("CENTREPOINT_CLIENT_ID", sim.client_id)
        monkeypatch.setenv("CENTREPOINT_CLIENT_SECRET", sim.client_secret)
        yield {"sim": sim, "roster": roster, "days": days, "timescale": timescale, "lake": lake,
               "instance": instance, "centrepoint": CentrePointResource(request_backoff_factor=0.05)}


def _expected(sim: CentrePointSimulator, roster: list[Participant], days: list[date]) -> set[tuple[str, date, int]]:
    out = set()
    for p in roster:
        subject = int(p.centrepoint_subject_id or 0)
        for day in days:
            for index in range(len(sim.settings_for(subject))):
                out.add((p.participant_id, day, sim.daily_statistic(subject, day, index)["id"]))
    return out


def _run(world: dict[str, Any]) -> None:
    roster, days = world["roster"], world["days"]
    tags = {"dagster/asset_partition_range_start": f"{days[0]}|{roster[0].participant_id}",
            "dagster/asset_partition_range_end": f"{days[-1]}|{roster[-1].participant_id}"}
    result = materialize(world["instance"], world["centrepoint"], world["lake"], world["timescale"], tags=tags)
    assert result.success


def test_every_record_lands_on_its_local_day_once(world: dict[str, Any]) -> None:
    sim, roster, days, timescale = world["sim"], world["roster"], world["days"], world["timescale"]
    expected = _expected(sim, roster, days)
    assert len(expected) == len(roster) * len(days) + len(days)  # one subject has two settings
    _run(world)

    db = timescale.fetch("SELECT participant_id, local_date, daily_statistic_id FROM wearables.actigraph_daily_statistics")
    assert sorted(db) == sorted(expected)  # none lost, none duplicated, none on a neighbouring day
    lake_rows = duckdb.sql(
        f"SELECT participant_id, local_date, daily_statistic_id FROM "
        f"read_parquet('{world['lake'].table_glob(LAKE_TABLE)}', hive_partitioning=true)").fetchall()
    assert sorted(lake_rows) == sorted(expected)

    # The local-date check (same rule, in SQL) agrees with every row...
    pdays = [ParticipantDay(d, p.participant_id) for p in roster for d in days]
    assert timescale.fetch(queries.ACTIGRAPH_MISATTRIBUTED, refresh.day_params(pdays)) == []
    # ...and flags a row moved to another day.
    moved = roster[-1].participant_id
    timescale.execute("UPDATE wearables.actigraph_daily_statistics SET local_date = local_date + 7 "
                      "WHERE participant_id = %s AND local_date = %s", (moved, days[0]))
    flagged = timescale.fetch(queries.ACTIGRAPH_MISATTRIBUTED,
                              refresh.day_params([ParticipantDay(days[0] + timedelta(days=7), moved)]))
    assert [(r[0], r[4]) for r in flagged] == [(moved, days[0])]
