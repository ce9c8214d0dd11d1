"""One ``psycopg_pool.ConnectionPool`` per process and DSN, so a run reuses its TimescaleDB sessions.

Why: every new PostgreSQL session costs the server a backend fork, authentication and loading
the ``timescaledb`` extension, measured at ~7-18 ms of server CPU each. Opening one connection
per ``Timescale.connect()``, ``fetch`` and per participant-day lock, a ranged run opened ~10
sessions per participant-day (thousands for a long backfill), and PostgreSQL spent ~0.8
core-seconds per participant-day in the benchmark. A pooled session is reused for the whole
process (warm catalog caches and psycopg's prepared statements included).

What a borrower gets is a whole session (not a transaction-mode pooler's slice of one), so
session-level advisory locks work on it. What it must never get is the previous borrower's
state, so every connection is cleaned on its way back (``_reset_session``): an open transaction
rolled back (psycopg_pool does that itself), every setting reset and every advisory lock
released; a connection that cannot be cleaned, or that was closed or broken, is discarded
(psycopg_pool replaces it). A connection that died while idle in the pool (server restart,
``pg_terminate_backend``) fails the ``check`` at checkout and is replaced, never handed out.

The pool never makes a borrower fail where a plain connection would have worked, nor hides why
a connection failed: the first connection of a process is a plain one (a wrong password or a
server that is down raises psycopg's own error at once, which the retry policy and the CLI
classify), and a borrower the pool cannot serve within ``_POOL_WAIT_S`` (every session busy, or
the server gone since the pool opened) gets a plain connection of its own, as before pooling
(or the error making one raises).

A pool must never cross ``fork`` (parent and child would share sockets), so pools are keyed by
``os.getpid()`` and created lazily; a child ignores its parent's pools and never closes them.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

#: ``application_name`` of every pooled session (and of the plain ones made instead).
APPLICATION_NAME = "wearable_assets"

#: Server-side TCP keepalives on every session: if a lock holder's host or network dies (no FIN
#: reaches the server), the server notices within about a minute and ends the session, which
#: releases its advisory locks. A killed process needs none of this: its socket is closed and
#: the session ends at once. Applied to all pooled sessions because any of them may hold a lock.
KEEPALIVES = "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"

#: Sessions kept open while idle: one, so a process that reads now and then does not reconnect
#: (idle sessions above it close after psycopg_pool's ``max_idle``, 10 minutes).
POOL_MIN_SIZE = 1
#: Most sessions one process holds at once. A run step fetches ``FETCH_THREADS`` (8, in
#: ``fitbit/assets.py``) participants side by side, and each thread holds at most a participant-
#: day lock's session and one writer's session at a time: 8 x 2 = 16. Past it a borrower waits
#: ``_POOL_WAIT_S``, then gets a plain connection rather than queueing behind long writes.
POOL_MAX_SIZE = 16
#: How long a borrower waits for a pooled session before making a plain one: long enough for a
#: busy session's next return (queries take milliseconds), short enough that a server which went
#: away since the pool opened is reported promptly with psycopg's own connection error.
_POOL_WAIT_S = 1.0

_pools: dict[tuple[int, str], ConnectionPool] = {}
_pools_lock = threading.Lock()


def _reinit_after_fork() -> None:
    """A fork child gets a fresh lock (the parent's may have been held by another thread)."""
    global _pools_lock
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_reinit_after_fork)


def _connection_kwargs(dsn: str) -> dict[str, Any]:
    """``application_name`` and the keepalives, keeping any ``options`` the DSN itself sets."""
    own = conninfo_to_dict(dsn).get("options")
    return {"application_name": APPLICATION_NAME, "options": f"{own} {KEEPALIVES}" if own else KEEPALIVES}


def _reset_session(conn: psycopg.Connection) -> None:
    """Called by psycopg_pool on every returned connection (already rolled back to idle).

    ``RESET ALL`` undoes ``SET``/``set_config`` of any scope (``statement_timeout``,
    ``lock_timeout``, the lock's ``application_name``) back to the session's start values;
    ``pg_advisory_unlock_all()`` makes sure no lock outlives its borrower; ``CLOSE ALL`` drops
    cursors declared ``WITH HOLD``. Prepared statements stay: psycopg tracks them per connection.
    One round trip (no parameters: the simple query protocol runs the three statements). An error
    here makes psycopg_pool discard the connection.
    """
    conn.autocommit = True
    conn.execute("RESET ALL; SELECT pg_advisory_unlock_all(); CLOSE ALL")


def _plain_connect(dsn: str, autocommit: bool) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=autocommit, **_connection_kwargs(dsn))


def _existing_pool(dsn: str) -> ConnectionPool | None:
    return _pools.get((os.getpid(), dsn))


def _open_pool(dsn: str) -> None:
    """Create this process's pool for ``dsn`` once (called after a plain connection succeeded)."""
    key = (os.getpid(), dsn)
    with _pools_lock:
        if key in _pools:
            return
        _pools[key] = ConnectionPool(
            dsn,
            kwargs=_connection_kwargs(dsn),
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            check=ConnectionPool.check_connection,
            reset=_reset_session,
            timeout=_POOL_WAIT_S,
            name=f"wearable_assets-{os.getpid()}",
            open=True,
        )


@contextmanager
def session(dsn: str, *, autocommit: bool) -> Iterator[psycopg.Connection]:
    """A session of this process's pool for ``dsn`` (or a plain one, see the module docstring).

    The caller's block is wrapped as psycopg's own ``with connection`` does: commit when the block
    ends normally, roll back when it raises. The session then goes back to the pool, cleaned, or
    is discarded if it is closed or broken.
    """
    pool = _existing_pool(dsn)
    conn: psycopg.Connection | None = None
    if pool is not None:
        try:
            conn = pool.getconn()
        except PoolTimeout:
            log.debug("no pooled session within %.1f s: using a plain connection", _POOL_WAIT_S)
    if conn is None:
        conn = _plain_connect(dsn, autocommit)
        if pool is None:
            _open_pool(dsn)  # the server accepts us: pool from now on
        with conn:  # commits or rolls back, then closes
            yield conn
        return
    assert pool is not None
    try:
        conn.autocommit = autocommit
        with conn:  # commits or rolls back; a pooled connection is not closed
            yield conn
    finally:
        pool.putconn(conn)


def close_all() -> None:
    """Close this process's pools (at exit; a fork child's inherited pools are left alone)."""
    pid = os.getpid()
    with _pools_lock:
        mine = [key for key in _pools if key[0] == pid]
        pools = [_pools.pop(key) for key in mine]
    for pool in pools:
        try:
            pool.close(timeout=2.0)
        except Exception as exc:  # exiting: nothing left to do about it
            log.debug("closing pool %s: %s", pool.name, exc)


atexit.register(close_all)
