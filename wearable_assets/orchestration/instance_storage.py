"""Dagster's PostgreSQL storage with a small connection pool, named in dagster.yaml.

Why: ``dagster_postgres`` opens a new PostgreSQL session for every statement it runs
(SQLAlchemy ``NullPool``: "to prevent accumulating connections per DagsterInstance"). A run
worker records several events per participant-day (a materialisation and check results per
partition, log lines), each a handful of statements, so a ranged run of 50 participant-days
opened thousands of sessions; each new backend costs the server a fork, authentication and
its caches, and the client a handshake. In the throughput benchmark
(``benchmarks/backfill_throughput.py``) PostgreSQL was the largest single consumer of CPU per
participant-day.

These subclasses change one thing: the engine keeps up to ``POOL_SIZE`` idle sessions per
process (more open while busy, closed again when returned). Everything else is Dagster's own
code: tables, migrations, queries, the webserver's own pool (``optimize_for_webserver``
replaces this engine there). A session that sat idle for ``PING_AFTER_IDLE_S`` or more is
tested (``SELECT 1``) before reuse and replaced if the server dropped it, so a restarted server
costs a reconnect, not a failed run. SQLAlchemy's ``pool_pre_ping`` would test every checkout:
a run worker checks a session out for each event it writes, and those pings were ~6% of a run
worker's CPU and ~10% of the daemon's in the 1,000-participant tick; a session reused within
the second is not tested (a server restart in that second fails the statement in flight, as it
would anyway). ``pool_recycle`` closes sessions older than an hour. A pool is per process and
never crosses a fork: run workers are started as new processes, and the multiprocess executor
starts its step processes with ``forkserver``/``spawn``.

Importing this module (Dagster does, in every process of an instance configured with these
classes) also turns on Dagster's batched event writes (``DAGSTER_EVENT_BATCH_SIZE``, opt-in,
read by Dagster at each write; an operator's own value wins): a ranged run's framework-made
materialisation of each partition of the range (one per participant-day and asset) is then
written as one multi-row INSERT per asset instead of one write per participant-day.
"""

from __future__ import annotations

import os
import time
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy import event, exc
from sqlalchemy import pool as sa_pool

#: Events per batched write: a ranged run's range (``PARTICIPANT_DAYS_PER_RUN``) in one go.
EVENT_BATCH_SIZE = "100"
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

#: Idle sessions kept per process and storage (a run worker writes events from one thread; the
#: daemon's and webserver's threads share the overflow).
POOL_SIZE = 2
MAX_OVERFLOW = 8
RECYCLE_S = 3600
#: A session idle this long is pinged before reuse (module docstring).
PING_AFTER_IDLE_S = 1.0
_RETURNED_AT = "wearables_returned_at"


def _ping_idle_sessions(engine: Any) -> None:
    """Checkout/checkin hooks: ``SELECT 1`` on a session idle ``PING_AFTER_IDLE_S`` or more;
    ``DisconnectionError`` makes the pool drop it and hand out a new one (SQLAlchemy retries the
    checkout, "Disconnect Handling - Pessimistic")."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return  # new session, or one in steady use
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as error:  # any failure: the session is not usable
            raise exc.DisconnectionError(f"idle Dagster storage session lost: {error}") from error


class _PooledEngine:
    """Mixed in before a dagster_postgres storage: its ``__init__`` builds the storage as Dagster
    does, then swaps the NullPool engine for a pooled one; ``from_config_value`` builds this
    class (Dagster's own builds the base class by name)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        storage: Any = self
        storage._engine.dispose()
        storage._engine = create_pg_engine(
            storage.postgres_url, storage._token_provider, isolation_level="AUTOCOMMIT",
            poolclass=sa_pool.QueuePool, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
            pool_recycle=RECYCLE_S,
        )
        _ping_idle_sessions(storage._engine)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


class PooledPostgresEventLogStorage(_PooledEngine, PostgresEventLogStorage):
    """Dagster's Postgres event log, with pooled sessions (module docstring)."""


class PooledPostgresRunStorage(_PooledEngine, PostgresRunStorage):
    """Dagster's Postgres run storage, with pooled sessions (module docstring)."""


class PooledPostgresScheduleStorage(_PooledEngine, PostgresScheduleStorage):
    """Dagster's Postgres schedule/sensor storage, with pooled sessions (module docstring)."""
