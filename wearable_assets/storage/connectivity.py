"""Which database errors mean "the server cannot be reached right now", as opposed to a bug.

Two callers need the same answer: the CLI, which turns such an error into one line and the fix
(``operator_errors``), and the run retry policy (``orchestration.retries``), which retries a step
only when waiting can help. ``psycopg.OperationalError`` alone is too wide for either: psycopg
files a wrong password, a full disk and a statement that is too complex under it too.
"""

from __future__ import annotations

import psycopg

#: SQLSTATEs of a server that is shutting down, starting up or out of connection slots.
_TRANSIENT_SQLSTATES = frozenset({
    "57P01",  # admin_shutdown (server stopped or restarted)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, recovering)
    "53300",  # too_many_connections
})


#: What the server says (before any SQLSTATE reaches psycopg) when refusing a connection only
#: for now: starting up, shutting down, recovering, out of connection slots.
_TRANSIENT_FATAL = ("the database system is", "too many clients", "remaining connection slots")


def _refused_at_login(exc: psycopg.OperationalError) -> bool:
    """A connection attempt the server answered with a FATAL message (bad role, password, database).

    psycopg reports connection failures without a SQLSTATE, so the server's own text tells a
    refusal ("role ... does not exist") from no server at all ("Connection refused").
    """
    text = str(exc)
    return exc.sqlstate is None and "FATAL:" in text and not any(t in text for t in _TRANSIENT_FATAL)


def is_unreachable(exc: BaseException) -> bool:
    """True for a connection that could not be made or was cut (refused, timed out, server gone).

    A connection-level failure has no SQLSTATE (psycopg raises it before the server answers) or
    one of class 08 (connection exception); the server stopping mid-query sends 57P01/57P02.
    """
    if not isinstance(exc, psycopg.OperationalError) or _refused_at_login(exc):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _TRANSIENT_SQLSTATES


def login_refused(exc: BaseException) -> bool:
    """The server answered but refused the role, password or database: waiting will not help."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return (exc.sqlstate or "").startswith("28") or _refused_at_login(exc)


def first_line(exc: BaseException) -> str:
    """psycopg's messages run over several lines (hints, tabs); the first says what happened."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__
