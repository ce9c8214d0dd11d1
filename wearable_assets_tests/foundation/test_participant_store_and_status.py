"""The one reader of ``wearables.participants`` and the one writer of ``wearables.ingest_status``,
against the real database."""

from __future__ import annotations

from datetime import date, datetime, timezone

import psycopg

from wearable_assets.participants import store
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import Participant
from wearable_assets.storage import ingest_status
from wearable_assets.storage.resources import TimescaleResource

DAY = date(2026, 11, 2)
FITBIT = Participant("P1", "S1", "Europe/London", date(2026, 1, 1), None, "google_health", "u1")
CENTREPOINT = Participant("P2", "S1", "Australia/Brisbane", date(2026, 1, 1), date(2026, 6, 30), None, None,
                          "5001", "50002")
NO_DEVICE = Participant("P3", "S1", "America/Chicago", date(2026, 1, 1))


def test_store_returns_the_rows_the_roster_sync_wrote(timescale: TimescaleResource) -> None:
    upsert_participants(timescale, [FITBIT, CENTREPOINT, NO_DEVICE])
    assert store.load(timescale, ["P2", "P1", "unknown"]) == {"P1": FITBIT, "P2": CENTREPOINT}
    assert store.find(timescale, "P3") == NO_DEVICE and store.find(timescale, "P9") is None
    # The schedule's participants: in the roster, with a device, ordered by id.
    assert store.scheduled(timescale) == [FITBIT, CENTREPOINT]
    timescale.execute("UPDATE wearables.participants SET in_roster = false WHERE participant_id = 'P1'")
    assert store.scheduled(timescale) == [CENTREPOINT]
    # A plain psycopg connection (the read API's pool) reads the same rows.
    with psycopg.connect(timescale.dsn) as conn:
        assert store.find(conn, "P2") == CENTREPOINT


def status_row(timescale: TimescaleResource, source: str = "centrepoint") -> tuple:
    return timescale.fetch(
        "SELECT status, detail, rows_loaded, api_calls, last_device_sync, time_zone, finished_at "
        "FROM wearables.ingest_status WHERE participant_id = 'P1' AND local_date = %s AND source = %s",
        (DAY, source),
    )[0]


def test_status_writer_keeps_counts_sync_and_zone_a_failure_does_not_know(timescale: TimescaleResource) -> None:
    synced = datetime(2026, 11, 2, 20, tzinfo=timezone.utc)
    loaded = datetime(2026, 11, 3, 4, tzinfo=timezone.utc)
    with timescale.connect() as conn:
        ingest_status.record(conn, "P1", DAY, "centrepoint", "ok", detail="1 daily statistic(s)", rows_loaded=7,
                             api_calls=2, last_device_sync=synced, time_zone="Europe/London", finished_at=loaded)
        conn.commit()
    assert status_row(timescale) == ("ok", "1 daily statistic(s)", 7, 2, synced, "Europe/London", loaded)
    # A failed fetch: new status, detail and calls; the earlier rows' count, sync time and zone stay.
    with timescale.connect() as conn:
        ingest_status.record(conn, "P1", DAY, "centrepoint", "api_error", detail="HTTP 500", api_calls=1)
        conn.commit()
    status, detail, rows, calls, sync, zone, finished = status_row(timescale)
    assert (status, detail, rows, calls, sync, zone) == ("api_error", "HTTP 500", 7, 1, synced, "Europe/London")
    assert finished > loaded  # the database's clock when the caller gives none
    # An explicit zero replaces the count; a first failure starts at zero rows and no detail stays NULL.
    with timescale.connect() as conn:
        ingest_status.record(conn, "P1", DAY, "centrepoint", "no_data", rows_loaded=0)
        ingest_status.record(conn, "P1", DAY, "google_health", "api_error")
        conn.commit()
    assert status_row(timescale)[:3] == ("no_data", None, 0)
    assert status_row(timescale, "google_health")[:4] == ("api_error", None, 0, 0)


def test_status_write_rolls_back_with_its_transaction(timescale: TimescaleResource) -> None:
    with timescale.connect() as conn:
        ingest_status.record(conn, "P1", DAY, "centrepoint", "ok", rows_loaded=3)
        conn.rollback()
    assert timescale.fetch("SELECT count(*) FROM wearables.ingest_status")[0][0] == 0
