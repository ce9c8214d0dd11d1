"""Retrying participant-day steps through a database outage (restart, failover, connection cut).

A run whose database is briefly unreachable should wait and try again, not fail and leave the
participant-day for the next schedule tick. Dagster's way is a ``RetryPolicy`` on the asset: the
step goes "up for retry" and starts again after ``delay`` (exponential backoff, jitter), in the
same run. Writes are transactional and idempotent per participant-day, so a retried step
replaces whatever its failed attempt may have left.

Attach it to every participant-day asset, the ops that write TimescaleDB or read it:
``@dg.asset(..., retry_policy=RETRY_POLICY)`` / ``@dg.multi_asset(..., retry_policy=...)`` in
``fitbit/assets.py``, ``actigraph/assets.py`` and ``rollups/assets.py`` (the asset check ops
only read and are cheap to re-run with the next materialisation).

A ``RetryPolicy`` retries after *any* exception, and a bad payload or a participant who must
re-consent would only fail again, three times, minutes apart. So the policy is meant together
with ``transient_database_errors()`` around the body: an outage (``TRANSIENT_ERRORS`` that
``storage.connectivity.is_unreachable`` confirms) is re-raised for the policy to retry, and
every other failure becomes ``dg.Failure(allow_retries=False)``, which ends the step at once
(its description names the original error, which stays chained as the cause)::

    @dg.asset(..., retry_policy=RETRY_POLICY)
    def intraday(context, timescale):
        with transient_database_errors():
            ...

Without the context manager the policy alone still retries the outage (and, needlessly, the
other failures).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from wearable_assets.storage.connectivity import is_unreachable

#: Exception types that can mean "the database is unreachable right now"; ``is_unreachable``
#: narrows them (psycopg also files a wrong password or a full disk under OperationalError).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError,)

#: 3 retries at ~15 s, 30 s, 60 s (±jitter): long enough for a server restart or a failover.
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it wraps) is a database outage worth waiting for."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TRANSIENT_ERRORS) and is_unreachable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def transient_database_errors() -> Iterator[None]:
    """Let a database outage inside the block reach the step's ``RetryPolicy``; fail anything else
    at once (``dg.Failure(allow_retries=False)``), so only waiting that can help is spent."""
    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(
            description=f"{type(exc).__name__}: {exc} (not a database outage: not retried)", allow_retries=False
        ) from exc
