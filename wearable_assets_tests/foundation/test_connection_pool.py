"""The process's TimescaleDB sessions are pooled, reused and lent out clean (``storage.pools``).

Against the real server: how many sessions a burst of reads opens, what a borrower can see of
the previous one (transaction, settings, advisory locks), and that sessions which died while
idle in the pool are replaced rather than handed out.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import psycopg
import pytest

from wearable_assets.storage import pools
from wearable_assets.storage.pools import POOL_MAX_SIZE
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets.storage.timescale import Timescale
from wearable_assets_tests.concurrency import CTX

DAY = date(2026, 11, 1)


def _same_session(ts: Timescale, pid: int) -> tuple[Any, ...]:
    """Borrow until the pool lends the session ``pid`` again; what that borrower sees at first."""
    deadline = time.monotonic() + 10  # a returned session is cleaned by a pool worker, then lent
    while time.monotonic() < deadline:
        with ts.connect() as conn:
            if conn.execute("SELECT pg_backend_pid()").fetchone() == (pid,):
                row = conn.execute(
                    "SELECT pg_current_xact_id_if_assigned() IS NULL, current_setting('statement_timeout'), "
                    "current_setting('lock_timeout'), current_setting('application_name'), "
                    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
                ).fetchone()
                assert row is not None
                return tuple(row)
    pool = pools._existing_pool(ts.dsn)
    pytest.fail(f"the pool never lent session {pid} again ({pool.get_stats() if pool else 'no pool'})")


def test_a_burst_of_reads_from_threads_reuses_a_few_sessions(timescale: TimescaleResource) -> None:
    ts = Timescale(timescale.dsn, apply_migrations=False)
    seen: set[int] = set()
    lock = threading.Lock()

    def read(_: int) -> None:
        (pid,), = ts.fetch("SELECT pg_backend_pid()")
        with lock:
            seen.add(pid)

    with ThreadPoolExecutor(max_workers=4) as threads:
        list(threads.map(read, range(200)))
    assert 1 <= len(seen) <= POOL_MAX_SIZE  # one new session per call would be ~200
    with psycopg.connect(timescale.dsn, autocommit=True) as conn:
        (open_sessions,), = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'wearable_assets%'").fetchall()
    assert open_sessions <= POOL_MAX_SIZE


def test_a_failed_block_is_rolled_back_and_the_next_borrower_has_no_transaction(
        timescale: TimescaleResource) -> None:
    ts = Timescale(timescale.dsn, apply_migrations=False)
    ts.execute("CREATE TABLE IF NOT EXISTS public.pool_probe (n int)")
    ts.execute("TRUNCATE public.pool_probe")
    for round_ in range(10):
        with pytest.raises(RuntimeError, match="boom"), ts.connect() as conn:
            (pid,), = conn.execute("SELECT pg_backend_pid()").fetchall()
            conn.execute("INSERT INTO public.pool_probe VALUES (%s)", (round_,))
            raise RuntimeError("boom")
        no_xid, *_ = _same_session(ts, pid)
        assert no_xid
        assert ts.fetch("SELECT count(*) FROM public.pool_probe") == [(0,)]
    # A block that ends normally commits, as psycopg's own ``with connection`` does.
    with ts.connect() as conn:
        conn.execute("INSERT INTO public.pool_probe VALUES (1)")
    assert ts.fetch("SELECT count(*) FROM public.pool_probe") == [(1,)]


def test_session_settings_do_not_reach_the_next_borrower(timescale: TimescaleResource) -> None:
    ts = Timescale(timescale.dsn, apply_migrations=False)
    for autocommit in (False, True, False, True):
        with ts.connect(autocommit=autocommit) as conn:
            (pid,), = conn.execute("SELECT pg_backend_pid()").fetchall()
            conn.execute("SET statement_timeout = '1234ms'")
            conn.execute("SET lock_timeout = '4321ms'")
            conn.execute("SELECT pg_advisory_lock(7)")
            assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
        assert _same_session(ts, pid) == (True, "0", "0", "wearable_assets", 0)


def test_a_lock_wait_leaves_no_timeout_or_name_behind(timescale: TimescaleResource) -> None:
    ts = Timescale(timescale.dsn, apply_migrations=False)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ts.participant_day_lock("pool", "P1", DAY):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    threading.Timer(0.3, release.set).start()
    with ts.participant_day_lock("pool", "P1", DAY, wait_s=20):  # waits, with a lock_timeout
        (pid,), = ts.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = 'wearable_assets lock' AND pid IN "
                           "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)")
    holder.join()
    assert _same_session(ts, pid) == (True, "0", "0", "wearable_assets", 0)


def _try_lock(dsn: str, asks: Any, answers: Any) -> None:
    """In another process: for each key asked, whether its lock is free right now."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while (key := asks.get()) is not None:
            (got,), = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchall()
            if got:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            answers.put(got)


def test_a_lock_is_free_for_another_process_as_soon_as_its_block_ends(timescale: TimescaleResource) -> None:
    ts = Timescale(timescale.dsn, apply_migrations=False)
    asks, answers = CTX.Queue(), CTX.Queue()
    other = CTX.Process(target=_try_lock, args=(timescale.dsn, asks, answers), daemon=True)
    other.start()
    try:
        for round_ in range(20):
            key = f"pool|P{round_}|{DAY.isoformat()}"
            raises = round_ % 2 == 1
            with pytest.raises(RuntimeError) if raises else _no_error():
                with ts.participant_day_lock("pool", f"P{round_}", DAY):
                    asks.put(key)
                    assert answers.get(timeout=30) is False, f"round {round_}: not held inside its block"
                    if raises:
                        raise RuntimeError("the block failed")
            asks.put(key)
            assert answers.get(timeout=30) is True, f"round {round_}: still held after its block (raised={raises})"
    finally:
        asks.put(None)
        other.join(30)
        if other.is_alive():
            other.kill()


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_sessions_killed_while_idle_are_replaced_not_lent(timescale: TimescaleResource) -> None:
    ts = Timescale(timescale.dsn, apply_migrations=False)
    for round_ in range(3):
        with ThreadPoolExecutor(max_workers=4) as threads:  # several sessions idle in the pool
            before = set(threads.map(lambda _: ts.fetch("SELECT pg_backend_pid()")[0][0], range(40)))
        with psycopg.connect(timescale.dsn, autocommit=True) as conn:
            (killed,), = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'wearable_assets%' AND pid <> pg_backend_pid()").fetchall()
        assert killed >= len(before) >= 1, f"round {round_}"
        after = [ts.fetch("SELECT pg_backend_pid()")[0][0] for _ in range(2 * POOL_MAX_SIZE)]
        assert not before & set(after), f"round {round_}: a killed session was lent out"
        with ThreadPoolExecutor(max_workers=4) as threads:
            assert set(threads.map(lambda _: ts.fetch("SELECT 1")[0][0], range(20))) == {1}
