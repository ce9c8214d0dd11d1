"""TimescaleDB access shared by every source: connections, migrations and idempotent writes.

The write path is ``replace_rows``: one transaction that deletes a partition's rows and streams
the new ones with binary ``COPY`` (psycopg 3). Measured on this class of machine it is the
fastest idempotent load (~270K rows/s into the intraday hypertable, memory flat because COPY
streams), and it makes a crash harmless: the old rows stay until the new ones commit.

``Timescale`` is plain Python (no Dagster): a process that only loads data, such as one
participant-day's load, does not pay Dagster's import (~60 MB of RSS). The Dagster resource
``TimescaleResource`` (``storage.resources``) is a subclass that adds nothing but config fields.

Connections come from one ``psycopg_pool`` pool per process and DSN (``storage.pools``): a new
PostgreSQL session costs the server ~7-18 ms of CPU (backend fork, authentication, loading the
extension), and opening one per ``connect``, ``fetch`` and lock made ~10 per participant-day,
PostgreSQL running at ~0.8 core-seconds per participant-day in the benchmark. Every borrower
still gets a whole, clean session: nothing (transaction, setting, lock) carries over to the next.

Overlapping runs of one participant-day (a backfill over a scheduled run, a retry beside the
run it retries) are serialised by ``participant_day_lock``, a PostgreSQL advisory lock: see its
docstring for why the isolation lives here and not in the lake.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from wearable_assets import settings
from wearable_assets.settings import mask_dsn
from wearable_assets.storage import migrations, pools

log = logging.getLogger(__name__)


#: ``application_name`` of a session while it holds (or waits for) a participant-day lock, so a
#: waiting run's log and ``pg_stat_activity`` show what the holder is; reset when it goes back.
_LOCK_APPLICATION_NAME = "wearable_assets lock"
#: Locks this thread holds, per (dsn, key): a nested request for the same participant-day is
#: granted at once instead of waiting for itself on a second connection.
_held = threading.local()


class ParticipantDayLockTimeout(TimeoutError):
    """Another run held the participant-day longer than the caller was willing to wait."""


def _split_table(table: str) -> sql.Identifier:
    schema, _, name = table.rpartition(".")
    return sql.Identifier(schema or "wearables", name)


class ForeignLocalServer(RuntimeError):
    """The project-local server on the default port belongs to another checkout."""


def check_local_server_owner(conn: psycopg.Connection, dsn: str) -> None:
    """Refuse another checkout's project-local server.

    Two checkouts on one machine both default to 127.0.0.1:55432; without this, the second one's
    runs would silently read and write the first one's database. ``scripts/timescaledb.sh``
    records the owning checkout's state folder in the server (``wearables.state_dir``); only a
    connection made through the *default* DSN (no ``WEARABLES_TIMESCALE_DSN``) is checked, and a
    server started before the setting existed is accepted.
    """
    if settings.is_set(settings.TIMESCALE_DSN_ENV) or dsn != settings.local_dsn():
        return
    row = conn.execute("SELECT current_setting('wearables.state_dir', true)").fetchone()
    owner = row[0] if row else None
    mine = str(settings.state_dir())
    if owner and owner != mine:
        raise ForeignLocalServer(
            f"the TimescaleDB server on {mask_dsn(dsn)} belongs to the checkout whose state folder is {owner}, "
            f"not this one ({mine}): give this checkout its own port with {settings.PG_PORT_ENV}=<free port> "
            f"(then `make db`), or set {settings.TIMESCALE_DSN_ENV} to use that server on purpose")


class Timescale:
    """Connection to the ``wearables`` schema in TimescaleDB.

    ``dsn`` is never put in logs or metadata (use ``settings.mask_dsn`` to print it). With
    ``apply_migrations`` the first connection of the object applies pending migrations.
    State kept per object: whether migrations ran, and the column types binary COPY needs.
    Sessions are not kept per object but borrowed from the process's pool for the DSN
    (``storage.pools``), so the many short-lived ``Timescale`` objects of a run (one per resource
    initialisation, one per loader) share a handful of sessions instead of opening their own.
    """

    def __init__(self, dsn: str, apply_migrations: bool = True) -> None:
        self.dsn = dsn
        self.apply_migrations = apply_migrations
        self._migrated = False
        self._owner_checked = False
        self._column_types: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dsn={mask_dsn(self.dsn)!r}, apply_migrations={self.apply_migrations!r})"

    @contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A pooled session with migrations applied (once per object) before first use.

        As with ``psycopg.connect``: without ``autocommit`` the block's transaction commits when
        the block ends normally and rolls back when it raises. The session then goes back to the
        pool with no transaction open and its settings reset (``storage.pools``).
        """
        with pools.session(self.dsn, autocommit=autocommit) as conn:
            if not self._owner_checked:
                check_local_server_owner(conn, self.dsn)
                self._owner_checked = True
            if self.apply_migrations and not self._migrated:
                migrations.migrate(conn)
                if not autocommit:
                    conn.commit()
                self._migrated = True
            yield conn

    def migrate(self) -> migrations.MigrationReport:
        with pools.session(self.dsn, autocommit=True) as conn:
            check_local_server_owner(conn, self.dsn)
            report = migrations.migrate(conn)
        self._migrated = True
        return report

    @contextmanager
    def participant_day_lock(self, source: str, participant_id: str, day: date, *,
                             wait_s: float | None = None) -> Iterator[None]:
        """Hold the exclusive lock of ``(source, participant_id, day)`` for the ``with`` block.

        A step that replaces a participant-day's data, wherever it lives (raw landing in the
        lake, the lake's parquet, the database rows), holds this lock for its whole
        read-modify-write, so two overlapping runs of the same participant-day take turns
        instead of interleaving (Fitbit: ``landing.land_day``, ``ingest.load_timescale`` and
        ``ingest.load_lake``, all under source ``fitbit``).

        Why a database lock and not a lake-side trick: the lake is a folder or an S3 prefix,
        which has no atomic rename of a folder, no compare-and-swap and no lock a crashed writer
        gives back (a lock *file* outlives the process that wrote it), and a participant-day is
        spread over several objects (manifest, fetch folders, parquet files of two tables), so
        no single-object write can make a replace atomic. The database is always there, and a
        *session-level* advisory lock is released by the server when the session ends: on
        exit, and on connection loss (a killed worker, a dead network: TCP keepalives,
        ``pools.KEEPALIVES``), so a crashed run never leaves a participant-day locked. The lock
        is taken on a dedicated autocommit connection, never on a writer's own: it spans several
        transactions (and lake writes that have none), and a writer's rollback must not release
        it. That connection is a session borrowed from the process's pool and held for the whole
        block; the lock is released before the session goes back (and the pool's reset releases
        any advisory lock still held), and a session whose release failed is closed, so the pool
        discards it instead of lending it out. The key is
        ``hashtextextended('<source>|<participant>|<day>', 0)``, one 64-bit advisory key per
        participant-day; a hash collision only makes two unrelated participant-days take turns.
        It needs a real session: a pooler in transaction mode in front of the server would
        break it (as it breaks any session-level lock); the process's own pool lends whole
        sessions, so it does not.

        Re-entrant within a thread (a nested request for the same key is granted at once).
        Waiting is logged (with the holder's backend pid and how long it has held it) so a
        stalled run shows why. ``wait_s``: give up after that many seconds with
        ``ParticipantDayLockTimeout`` (default: wait as long as the holder works).
        """
        key = f"{source}|{participant_id}|{day.isoformat()}"
        held: Counter[tuple[str, str]] = _held.__dict__.setdefault("locks", Counter())
        if held[(self.dsn, key)]:
            held[(self.dsn, key)] += 1
            try:
                yield
            finally:
                held[(self.dsn, key)] -= 1
            return
        with pools.session(self.dsn, autocommit=True) as conn:
            (got,), = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) FROM set_config('application_name', %s, false)",
                (key, _LOCK_APPLICATION_NAME)).fetchall()
            if not got:
                self._wait_for_lock(conn, key, wait_s)
            held[(self.dsn, key)] += 1
            try:
                yield
            finally:
                held[(self.dsn, key)] -= 1
                if not held[(self.dsn, key)]:
                    del held[(self.dsn, key)]
                try:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
                except psycopg.Error as exc:
                    # The session is gone, and the server released the lock with it. The work
                    # above ran to its end regardless; say so, since another run may have
                    # overlapped with its tail.
                    log.warning("participant-day lock %s: connection lost before release (%s); "
                                "the server released the lock when the session ended", key, type(exc).__name__)
                    conn.close()  # never lent out again: the pool discards a closed connection

    @staticmethod
    def _wait_for_lock(conn: psycopg.Connection, key: str, wait_s: float | None) -> None:
        holder = conn.execute(
            """SELECT l.pid, a.application_name, round(extract(epoch FROM now() - a.state_change))::int
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid = ((hashtextextended(%s, 0) >> 32) & 4294967295)::oid
                  AND l.objid = (hashtextextended(%s, 0) & 4294967295)::oid""",
            (key, key),
        ).fetchone()
        who = (f"backend pid {holder[0]} ({holder[1] or 'unnamed'}), holding it for {holder[2]} s"
               if holder else "a run that has just released it")
        log.info("participant-day %s is being written by another run (%s): waiting for it", key, who)
        started = time.monotonic()
        try:
            # In a transaction of its own so the timeout is ``SET LOCAL``: it ends with the wait
            # and never reaches the session's next borrower. The session-level lock it takes
            # outlives the transaction (advisory locks ignore transaction boundaries).
            with conn.transaction():
                if wait_s is not None:
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, int(wait_s * 1000))}ms",))
                conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        except psycopg.errors.LockNotAvailable:
            raise ParticipantDayLockTimeout(
                f"participant-day {key} is still being written by another run ({who}) after {wait_s:g} s; "
                "re-run this participant-day when that run has finished"
            ) from None
        log.info("participant-day %s: lock acquired after waiting %.1f s", key, time.monotonic() - started)

    def license(self) -> str | None:
        with self.connect() as conn:
            return migrations.timescale_license(conn)

    def fetch(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(query, params).fetchall()

    def execute(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] | dict[str, Any] | None = None) -> int:
        """Run one statement in its own transaction; returns the affected row count."""
        with self.connect() as conn:
            cur = conn.execute(query, params)
            return cur.rowcount

    def _types_for(self, conn: psycopg.Connection, table: str, columns: Sequence[str]) -> list[str]:
        """Postgres type names of ``columns``, which binary COPY needs (cached per table)."""
        key = (table, tuple(columns))
        if key not in self._column_types:
            schema, _, name = table.rpartition(".")
            rows = conn.execute(
                """SELECT a.attname, format_type(a.atttypid, NULL)
                     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped""",
                (schema or "wearables", name),
            ).fetchall()
            by_name: dict[str, str] = dict(rows)
            missing = [c for c in columns if c not in by_name]
            if missing:
                raise ValueError(f"{table} has no column(s) {', '.join(missing)}")
            self._column_types[key] = [by_name[c] for c in columns]
        return self._column_types[key]

    def replace_rows(
        self,
        table: str,
        *,
        where: str,
        params: Sequence[Any],
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        conn: psycopg.Connection | None = None,
    ) -> tuple[int, int]:
        """Delete the rows matching ``where`` and COPY ``rows`` in, in one transaction.

        ``where`` is a fixed SQL fragment written in code (never user input) with ``%s``
        placeholders bound to ``params``. Returns ``(deleted, inserted)``.
        Pass ``conn`` to make this part of a larger transaction owned by the caller.
        """
        if conn is None:
            with self.connect() as own:
                result = self.replace_rows(table, where=where, params=params, columns=columns, rows=rows, conn=own)
                own.commit()
                return result
        ident = _split_table(table)
        with conn.transaction():
            deleted = conn.execute(
                sql.SQL("DELETE FROM {} WHERE ").format(ident) + sql.SQL(where), params
            ).rowcount
            inserted = self.copy_rows(conn, table, columns, rows)
        return deleted, inserted

    def replace_binary(
        self,
        table: str,
        *,
        where: str,
        params: Sequence[Any],
        columns: Sequence[str],
        chunks: Iterable[bytes],
        conn: psycopg.Connection,
    ) -> int:
        """``replace_rows`` for rows already encoded as binary COPY data (``chunks``: a complete
        stream, header and trailer included), on the caller's transaction. For loaders that
        encode column-wise instead of paying psycopg's per-row formatting. Returns rows deleted."""
        ident = _split_table(table)
        with conn.transaction():
            deleted = conn.execute(
                sql.SQL("DELETE FROM {} WHERE ").format(ident) + sql.SQL(where), params
            ).rowcount
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                ident, sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for chunk in chunks:
                    copy.write(chunk)
        return deleted

    def copy_rows(
        self, conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Binary COPY ``rows`` into ``table`` on the caller's connection/transaction."""
        types = self._types_for(conn, table, columns)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            _split_table(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        count = 0
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def upsert_rows(
        self,
        table: str,
        *,
        key: Sequence[str],
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        conn: psycopg.Connection | None = None,
    ) -> int:
        """Insert or update by ``key`` (staging COPY + ``ON CONFLICT … DO UPDATE`` that skips
        unchanged rows, so a re-run of identical data writes nothing)."""
        if conn is None:
            with self.connect() as own:
                count = self.upsert_rows(table, key=key, columns=columns, rows=rows, conn=own)
                own.commit()
                return count
        ident = _split_table(table)
        updates = [c for c in columns if c not in key]
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE TEMP TABLE _stage (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(ident)
            )
            types = self._types_for(conn, table, columns)
            stmt = sql.SQL("COPY _stage ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            cols = sql.SQL(", ").join(map(sql.Identifier, columns))
            query = sql.SQL("INSERT INTO {t} AS t ({cols}) SELECT {cols} FROM _stage ON CONFLICT ({key}) ").format(
                t=ident, cols=cols, key=sql.SQL(", ").join(map(sql.Identifier, key))
            )
            if updates:
                query += sql.SQL("DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})").format(
                    sets=sql.SQL(", ").join(
                        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updates
                    ),
                    old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in updates),
                    new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in updates),
                )
            else:
                query += sql.SQL("DO NOTHING")
            return conn.execute(query).rowcount
