"""Overlapping writers of one participant-day: the advisory lock, and a lake that never deletes a
newer load's files. Writers are separate processes released together (``concurrency``), for many
rounds, against the real database and a real lake folder."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest

from wearable_assets.storage.lake import Lake, PartitionTable, load_id_of
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import ParticipantDayLockTimeout, Timescale
from wearable_assets_tests.concurrency import CTX, Outcome, errors, run_rounds

DAY = date(2026, 11, 1)
PID = "P1"
TABLE = "samples"
ROWS = {0: 3000, 1: 2000}  # per worker, so a round's survivor can be told apart
ROUNDS = 20


def _table(worker: int) -> PartitionTable:
    n = ROWS[worker]
    data = pa.table({"participant_id": [PID] * n, "local_date": pa.array([DAY] * n, pa.date32()),
                     "writer": [worker] * n, "seq": list(range(n))})
    return PartitionTable(TABLE, data, {"participant_id": PID, "local_date": DAY})


def _write(dsn: str, lake_url: str, locked: bool, worker: int, round_: int) -> str | None:
    lake = Lake(lake_url)
    if locked:
        with Timescale(dsn, apply_migrations=False).participant_day_lock("test", PID, DAY):
            (write,) = lake.write_partition(PID, DAY, [_table(worker)])
    else:
        (write,) = lake.write_partition(PID, DAY, [_table(worker)])
    return write.load_id


def _versions(lake: Lake) -> tuple[list[str], dict[float, list[tuple[int, int, int]]]]:
    """The participant-day's files, and per load id: (writer, rows, distinct seq) of its rows."""
    prefix = Path(lake.partition_prefix(TABLE, PID, DAY))
    files = sorted(str(p) for p in prefix.glob("*.parquet")) if prefix.exists() else []
    by_load: dict[float, list[tuple[int, int, int]]] = {}
    for path in files:
        rows = duckdb.sql(f"SELECT writer, count(*), count(DISTINCT seq) FROM read_parquet('{path}') "
                          "GROUP BY writer").fetchall()
        by_load.setdefault(load_id_of(path), []).extend(rows)  # type: ignore[arg-type]
    return files, by_load


def test_locked_writers_leave_exactly_one_complete_version(timescale: TimescaleResource, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))

    def check(round_: int, outcomes: list[Outcome]) -> None:
        assert errors(outcomes) == []
        files, by_load = _versions(lake)
        assert len(by_load) == 1, f"round {round_}: {len(by_load)} versions in {files}"
        ((load_id, [(writer, rows, distinct)]),) = by_load.items()
        assert rows == distinct == ROWS[writer], f"round {round_}: {rows} rows of writer {writer}"
        # The survivor is the load that ran last under the lock: the newer of the two.
        assert load_id == max(float(o.value) for o in outcomes)

    run_rounds(_write, (timescale.dsn, lake.url, True), workers=2, rounds=ROUNDS, check=check)


def test_unlocked_writers_never_leave_the_participant_day_empty(tmp_path: Path) -> None:
    # No lock: the writers interleave freely. Deleting only older loads' files means the worst
    # case is both versions (what the lake's duplicate check reports), never none.
    lake = Lake(str(tmp_path / "lake"))
    seen: list[int] = []

    def check(round_: int, outcomes: list[Outcome]) -> None:
        # Unlocked, the newer writer may delete the older one's files while dlt is still loading
        # them: that older write then FAILS, loudly (never a silent success). The newer one stands.
        succeeded = [o for o in outcomes if o.error is None]
        assert len(succeeded) >= 1 and len(errors(outcomes)) <= 1, errors(outcomes)
        files, by_load = _versions(lake)
        assert files, f"round {round_}: the participant-day lost every file"
        assert 1 <= len(by_load) <= 2
        newest = max(float(o.value) for o in succeeded)
        assert newest in by_load, f"round {round_}: the newest load's files were deleted"
        for load_id in {float(o.value) for o in succeeded} & set(by_load):
            ((writer, rows, distinct),) = by_load[load_id]
            assert rows == distinct == ROWS[writer], f"round {round_}: load {load_id} is incomplete"
        seen.append(len(by_load))
        shutil.rmtree(lake.partition_prefix(TABLE, PID, DAY))  # each round starts from nothing

    run_rounds(_write, (None, lake.url, False), workers=2, rounds=ROUNDS, check=check)
    logging.getLogger(__name__).info("unlocked rounds with two versions: %d of %d", seen.count(2), len(seen))


def test_a_write_deletes_older_loads_but_never_a_newer_one(lake: LakeResource) -> None:
    (first,) = lake.write_partition(PID, DAY, [_table(0)])
    prefix = Path(lake.partition_prefix(TABLE, PID, DAY))
    (older,) = [p for p in prefix.glob("*.parquet")]
    # A load that started after the next write (its id is later) and one from long before.
    future = f"{float(first.load_id) + 3600:.7f}"  # type: ignore[arg-type]
    shutil.copy(older, prefix / f"{future}.{older.name.split('.', 2)[2]}")
    (second,) = lake.write_partition(PID, DAY, [_table(1)])
    names = sorted(p.name for p in prefix.glob("*.parquet"))
    assert [Path(p).name for p in second.files_removed] == [older.name]
    assert names == sorted([Path(p).name for p in second.files_written] + [f"{future}.{older.name.split('.', 2)[2]}"])
    # Removing the day (no rows) is "now": it also leaves the later load alone.
    (gone,) = lake.write_partition(PID, DAY, [PartitionTable(TABLE, _table(0).data.slice(0, 0), _table(0).scope)])
    assert [Path(p).name for p in gone.files_removed] == [n for n in names if not n.startswith(f"{future}.")]
    assert [p.name for p in prefix.glob("*.parquet")] == [n for n in names if n.startswith(f"{future}.")]


def test_raw_delete_removes_the_folders_it_empties(lake: LakeResource) -> None:
    lake.land_raw("fitbit", PID, DAY, "fetch=1/a.p000", b"{}")
    lake.land_raw("fitbit", PID, DAY, "fetch=1/b.p000", b"{}")
    lake.land_raw("fitbit", PID, DAY, "_manifest", b"{}")
    folder = Path(lake.raw_key("fitbit", PID, DAY, "fetch=1/x")).parent
    lake.delete_raw("fitbit", PID, DAY, "fetch=1/a.p000")
    assert folder.is_dir()  # still holds b
    lake.delete_raw("fitbit", PID, DAY, "fetch=1/b.p000")
    assert not folder.exists() and folder.parent.is_dir()  # the participant-day's folder stays
    assert lake.list_raw("fitbit", PID, DAY) == ["_manifest"]
    # Empty folders from before (nested too) are swept; one that holds a file is not.
    (folder.parent / "fetch=2" / "deeper").mkdir(parents=True)
    lake.land_raw("fitbit", PID, DAY, "fetch=3/c.p000", b"{}")
    assert sorted(Path(p).name for p in lake.remove_empty_raw_folders("fitbit", PID, DAY)) == ["deeper", "fetch=2"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["_manifest.json.gz", "fetch=3"]


# --- the lock itself ---------------------------------------------------------------------
def _hold(dsn: str, ready: object, seconds: float) -> None:
    with Timescale(dsn, apply_migrations=False).participant_day_lock("test", PID, DAY):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_waiting_is_logged_and_can_time_out(timescale: TimescaleResource, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wearable_assets.storage.timescale")
    ready = threading.Event()
    holder = threading.Thread(target=_hold, args=(timescale.dsn, ready, 1.5))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(ParticipantDayLockTimeout, match=r"test\|P1\|2026-11-01 is still being written by another "
                                                         r"run \(backend pid \d+ \(wearable_assets lock\)"):
        with timescale.participant_day_lock("test", PID, DAY, wait_s=0.3):
            pytest.fail("granted while another holder had it")
    # Other keys are not blocked: another participant, day or source.
    for key in (("test", "P2", DAY), ("test", PID, date(2026, 11, 2)), ("other", PID, DAY)):
        with timescale.participant_day_lock(*key, wait_s=0.3):
            pass
    started = time.monotonic()
    with timescale.participant_day_lock("test", PID, DAY):
        waited = time.monotonic() - started
        with timescale.participant_day_lock("test", PID, DAY, wait_s=0.1):  # re-entrant: no self-deadlock
            pass
    holder.join()
    assert waited > 0.5
    messages = [r.getMessage() for r in caplog.records]
    assert any("test|P1|2026-11-01 is being written by another run" in m and "waiting" in m for m in messages)
    assert any("test|P1|2026-11-01: lock acquired after waiting" in m for m in messages)


def test_a_killed_holder_releases_the_lock(timescale: TimescaleResource) -> None:
    ready = CTX.Event()
    proc = CTX.Process(target=_hold, args=(timescale.dsn, ready, 120.0), daemon=True)
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(ParticipantDayLockTimeout):
            with timescale.participant_day_lock("test", PID, DAY, wait_s=0.3):
                pass
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
        proc.join(10)
        with timescale.participant_day_lock("test", PID, DAY, wait_s=10):
            pass
    finally:
        if proc.is_alive():
            proc.kill()


def test_a_lost_lock_connection_releases_the_lock_and_is_logged(timescale: TimescaleResource,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wearable_assets.storage.timescale")
    ready, go_on = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with timescale.participant_day_lock("test", PID, DAY):
                ready.set()
                go_on.wait(30)
        except BaseException as exc:  # must not happen: the work is done, only the release failed
            failures.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(10)
    with psycopg.connect(timescale.dsn, autocommit=True) as conn:
        (terminated,), = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'wearable_assets lock' AND datname = current_database()").fetchall()
    assert terminated == 1
    with timescale.participant_day_lock("test", PID, DAY, wait_s=10):  # the server released it
        pass
    go_on.set()
    holder.join()
    assert failures == []
    assert any("connection lost before release" in r.getMessage() for r in caplog.records)
