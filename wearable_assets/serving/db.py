"""Read-only database connections for the API, reused across requests.

Why a pool: opening a PostgreSQL connection costs a few milliseconds, more than answering a
rollup query (~1 ms), so a connection per request would hide the very speed-up the rollups
buy. Why so small a pool instead of a library: the API only ever runs short read-only
statements, so reuse, a size bound and "drop a connection that broke" are all it needs.

Every connection is made read-only three ways: ``SET ROLE`` to the reader role (SELECT-only
grants, wearable_assets/sql/005_serving.sql), ``default_transaction_read_only``, and a ``statement_timeout`` so a
heavy query cannot hold the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from wearable_assets.serving.config import ServingConfig

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database cannot answer right now (down, unreachable, overloaded): HTTP 503."""


class ReadOnlyPool:
    def __init__(self, config: ServingConfig) -> None:
        self._config = config
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(config.pool_size)

    def _open(self) -> psycopg.Connection:
        options = "-c default_transaction_read_only=on -c timezone=UTC"
        conn = psycopg.connect(
            self._config.dsn,
            autocommit=True,
            connect_timeout=5,
            application_name="wearable_assets.api",
            options=options,
        )
        if self._config.role:
            try:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self._config.role)))
            except psycopg.DatabaseError as exc:
                conn.close()
                log.error("cannot SET ROLE %s: %s", self._config.role, exc)
                raise DatabaseUnavailable(
                    f"the API cannot switch to the read-only role {self._config.role!r}: apply the migrations "
                    "(wearable-assets db migrate) or set WEARABLES_API_ROLE to a role the login user may use"
                ) from None
        # Set last, so that it limits the API's queries and not the connection set-up.
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(self._config.statement_timeout_ms)),))
        return conn

    def _take(self) -> psycopg.Connection | None:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return None

    def _give_back(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run ``work(conn)`` on a pooled connection.

        A reused connection may have died since its last use (server restart, idle timeout);
        the work is read-only, so it is retried once on a fresh connection before the database
        is reported unavailable.
        """
        if not self._slots.acquire(timeout=30):
            raise DatabaseUnavailable("all database connections are busy; try again shortly")
        try:
            conn = self._take()
            reused = conn is not None
            for attempt in (1, 2):
                try:
                    if conn is None:
                        conn = self._open()
                    result = work(conn)
                    self._give_back(conn)
                    return result
                except psycopg.errors.QueryCanceled:
                    if conn is not None:
                        self._give_back(conn)
                    raise DatabaseUnavailable(
                        f"the query took longer than {self._config.statement_timeout_ms} ms; "
                        "narrow the time window or use a coarser resolution"
                    ) from None
                except psycopg.OperationalError as exc:
                    if conn is not None:
                        conn.close()
                    conn = None
                    if attempt == 1 and reused:
                        continue
                    # The driver's text names host and port; keep it in the server log only.
                    log.warning("database unavailable: %s", exc)
                    raise DatabaseUnavailable("the database is not reachable; try again later") from None
                except BaseException:
                    if conn is not None:
                        self._give_back(conn)
                    raise
            raise AssertionError("unreachable")
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
