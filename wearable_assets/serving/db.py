"""Read-only database connections for the API, reused across requests.

Why a pool: opening a PostgreSQL connection costs a few milliseconds, more than answering a
rollup query (~1 ms), so a connection per request would hide the very speed-up the rollups
buy. Why so small a pool instead of a library: the API only ever runs short read-only
statements, so reuse, a size bound and "drop a connection that broke" are all it needs.

Every connection logs in as the API's own role (``wearables_api``, sql/009_api_login_role.sql),
which holds SELECT and nothing else, and is checked for exactly that before first use
(``login_problems``): a DSN that logs in as the pipeline's user, a superuser or any role that
could write, read the token table or switch to a role that can is refused with a 503 that says
what to fix. Narrowing a stronger login with ``SET ROLE`` is not enough, because any statement on
the connection can ``RESET ROLE``. ``default_transaction_read_only`` is kept as a second guard,
and a ``statement_timeout`` stops a heavy query from holding the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

from wearable_assets.serving.config import API_DSN_ENV, API_LOGIN_ROLE, ServingConfig, describe_dsn

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database cannot answer right now (down, unreachable, overloaded): HTTP 503."""


#: What the login could do beyond reading. Relations of every schema but the system ones count
#: (the TimescaleDB catalog too: writing it would corrupt hypertables).
_LOGIN_CHECK = """
SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = r.oid ORDER BY 1) AS member_of,
       coalesce(has_any_column_privilege(to_regclass('wearables.oauth_tokens'), 'SELECT'), false) AS reads_tokens,
       ARRAY(SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast%'
                AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES')
              ORDER BY 1 LIMIT 5) AS writable,
       ARRAY(SELECT n.nspname::text FROM pg_namespace n
              WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                AND has_schema_privilege(n.oid, 'CREATE') ORDER BY 1) AS creates_in,
       has_database_privilege(current_database(), 'CREATE') AS creates_schemas
  FROM pg_roles r WHERE r.rolname = session_user
"""


#: libpq's texts for a login the server refused (as opposed to a server that is not there).
_LOGIN_REFUSED = ("does not exist", "authentication failed", "no pg_hba.conf entry", "not permitted to log in")


def login_problems(conn: psycopg.Connection) -> list[str]:
    """Why the connection's login role is not safe for the API (empty: it is).

    Checked on the *session* user, the role that ``RESET ROLE`` returns to, so that what the
    connection can regain is judged and not what it currently shows.
    """
    row = conn.execute(_LOGIN_CHECK).fetchone()
    if row is None:  # the session user has no pg_roles row: cannot happen on a live connection
        return ["the login role is unknown to the server"]
    (user, superuser, createrole, createdb, bypassrls, replication, member_of, reads_tokens, writable,
     creates_in, creates_schemas) = row
    problems = [f"{user} has {attr}" for attr, held in (
        ("SUPERUSER", superuser), ("CREATEROLE", createrole), ("CREATEDB", createdb),
        ("BYPASSRLS", bypassrls), ("REPLICATION", replication)) if held]
    if member_of:
        problems.append(f"{user} is a member of {', '.join(member_of)} (SET ROLE could reach it)")
    if reads_tokens:
        problems.append(f"{user} may read wearables.oauth_tokens")
    if writable:
        problems.append(f"{user} may write {', '.join(writable)}")
    if creates_in:
        problems.append(f"{user} may create objects in schema {', '.join(creates_in)}")
    if creates_schemas:
        problems.append(f"{user} may create schemas in this database")
    return problems


class ReadOnlyPool:
    def __init__(self, config: ServingConfig) -> None:
        self._config = config
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(config.pool_size)

    def _open(self) -> psycopg.Connection:
        options = "-c default_transaction_read_only=on -c timezone=UTC"
        try:
            conn = psycopg.connect(
                self._config.dsn,
                autocommit=True,
                connect_timeout=5,
                application_name="wearable_assets.api",
                options=options,
            )
        except psycopg.OperationalError as exc:
            # The server answered but turned the login away (no such role or database, wrong
            # password): waiting will not help, so say what to fix instead of "not reachable".
            if any(text in str(exc) for text in _LOGIN_REFUSED):
                log.error("the database refused the API's login %s: %s", describe_dsn(self._config.dsn), exc)
                raise DatabaseUnavailable(
                    f"the database refused the API's login: apply the migrations (they create {API_LOGIN_ROLE}) "
                    f"and check {API_DSN_ENV} (user, password, database); the server log has the reason"
                ) from None
            raise
        try:
            problems = login_problems(conn)
        except BaseException:
            conn.close()
            raise
        if problems:
            conn.close()
            log.error("refusing the database login %s for the API: %s", describe_dsn(self._config.dsn),
                      "; ".join(problems))
            raise DatabaseUnavailable(
                f"the API's database login may do more than read ({'; '.join(problems)}): set {API_DSN_ENV} "
                f"to log in as {API_LOGIN_ROLE}, created by the migrations (wearable-assets db migrate)"
            )
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
