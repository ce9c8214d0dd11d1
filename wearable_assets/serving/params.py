"""Limits on what a client may send, and the check every request's query string goes through.

Why a check ahead of each endpoint's own parameters: a value with a NUL byte reaches
PostgreSQL as a bound parameter and fails there (text cannot hold NUL), which used to surface
as a 500. Rejecting control characters and over-long values for *every* parameter of *every*
route in one place (an app-wide dependency) means an endpoint or parameter added later is
covered without anyone remembering to; the endpoints' typed parameters (``api.py``) then
add their own ranges.
"""

from __future__ import annotations

import unicodedata

from fastapi import Request

from wearable_assets.serving.routing import BadRequest

#: Longest name or value of any query parameter; the named parameters have tighter limits.
MAX_PARAM_CHARS = 256
#: Longest ``participant_id`` and ``metric``.
MAX_ID_CHARS = 64
#: Longest ``start``/``end``: ISO 8601 with microseconds and an offset is 32 characters.
MAX_TIME_CHARS = 64
#: Largest ``offset`` (PostgreSQL ``integer``); far beyond any window: pages hold 50,000 points.
MAX_OFFSET = 2**31 - 1


def _shown(name: str) -> str:
    """A parameter name fit for an error message, however long or strange it is."""
    return repr(name if len(name) <= 40 else name[:40] + "...")


def _control_character(text: str) -> str | None:
    """The first control character (Unicode category Cc: C0, DEL, C1) in ``text``, if any."""
    return next((ch for ch in text if unicodedata.category(ch) == "Cc"), None)


async def check_query_parameters(request: Request) -> None:
    """Refuse (400) a query string holding a control character or an over-long name or value.

    Runs before FastAPI validates the endpoint's parameters, so the client gets this message
    rather than a confusing later one. Unknown parameters are checked too: they are ignored
    otherwise, but a NUL anywhere in a request is a client bug worth reporting.
    """
    for name, value in request.query_params.multi_items():
        for text, what in ((name, "name"), (value, "value")):
            control = _control_character(text)
            if control is not None:
                raise BadRequest(
                    f"query parameter {_shown(name)}: its {what} contains the control character "
                    f"U+{ord(control):04X}; parameters are plain text"
                )
            if len(text) > MAX_PARAM_CHARS:
                raise BadRequest(
                    f"query parameter {_shown(name)}: its {what} is {len(text)} characters long, "
                    f"at most {MAX_PARAM_CHARS} are accepted"
                )
