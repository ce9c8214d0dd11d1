"""Failures the operator can fix, as one line that says what happened and what to do.

``run_cli`` (the ``main`` of ``wearable-assets``, and of the development CLI in the checkout)
asks ``explain`` about any exception a command did not handle; a known one is printed as
``error: <line>`` with exit status 2 instead of a traceback (which would bury the fix under 40
lines). Unknown exceptions keep their traceback: they are bugs to report.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import click

from wearable_assets import settings
from wearable_assets.oauth.crypto import TokenCipher, TokenKeyError
from wearable_assets.storage.connectivity import (
    first_line,
    is_unreachable,
    login_refused,
)
from wearable_assets.storage.timescale import ForeignLocalServer

FIX_DATABASE = f"run `make db` or set {settings.TIMESCALE_DSN_ENV}"
FIX_DAGSTER_HOME = "run `make dagster-home` (or create the folder and copy the repo's dagster.yaml into it)"


def masked_dsn(dsn: str) -> str:
    """``settings.mask_dsn`` for URLs, plus the ``key=value`` form (``password=...``) psycopg also takes."""
    if "://" in dsn:
        return settings.mask_dsn(dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes: Dagster and dlt wrap the errors that matter."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _fatal_part(exc: BaseException) -> str:
    """The server's own words ("role \"x\" does not exist") from psycopg's longer message."""
    text = first_line(exc)
    return text.split("FATAL:", 1)[1].strip() if "FATAL:" in text else text


def token_key_problem(key: str | None) -> str | None:
    """What is wrong with a token key and how to fix it (never echoing it), or None if well-formed."""
    try:
        TokenCipher(key or "")
    except TokenKeyError as exc:
        return str(exc)
    return None


def explain(exc: BaseException) -> str | None:
    """One line for a failure the operator can fix, or None to let the traceback through."""
    for cause in _chain(exc):
        if is_unreachable(cause):
            return (f"cannot reach the database at {masked_dsn(settings.timescale_dsn())} "
                    f"({first_line(cause)}): {FIX_DATABASE}")
        if login_refused(cause):
            return (f"the database at {masked_dsn(settings.timescale_dsn())} refused the connection "
                    f"({_fatal_part(cause)}): check the role, password and database name in "
                    f"{settings.TIMESCALE_DSN_ENV}")
        if isinstance(cause, (TokenKeyError, ForeignLocalServer)):  # their messages name the fix
            return str(cause)
        if type(cause).__name__ == "DagsterInvariantViolationError" and "$DAGSTER_HOME" in str(cause):
            return (f"DAGSTER_HOME={settings.dagster_home()} is not an existing absolute folder: {FIX_DAGSTER_HOME}")
    return None


def run_cli(group: click.Group, prog_name: str | None = None) -> None:
    """Run a click command line; a failure the operator can fix (database down, malformed token
    key) is one line with the fix and exit status 2, anything else keeps its traceback."""
    try:
        group(standalone_mode=True, prog_name=prog_name)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        sys.exit(2)
