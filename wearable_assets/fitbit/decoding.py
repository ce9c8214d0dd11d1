"""Decoding provider JSON bodies, and the errors a provider call or payload ends in.

Kept out of ``http`` (which needs ``requests``) because the loaders decode landed payloads too,
in processes that make no HTTP call: they raise ``MalformedPayload`` for a landed body that does
not parse, and ``MalformedPayload`` is an ``ApiError`` (a fetch that receives such a body fails
the same way). ``http`` re-exports all three, so the adapters import them from there.
"""

from __future__ import annotations

from typing import Any

import orjson

from wearable_assets.gc_paused import gc_paused


class ApiError(RuntimeError):
    """A call that failed for good (retries exhausted, or a status the adapter cannot handle)."""


class MalformedPayload(ApiError):
    """A 2xx response whose body is not the JSON document the API documents."""


def decode_json(body: bytes, what: str, where: str) -> Any:
    """Parse a response body, naming the payload and where its raw copy was kept on failure.

    orjson rather than ``json``: a 1-s heart-rate day is ~45 MB of Google Health JSON, and
    decoding it is the largest single cost of a load. The cyclic GC is paused meanwhile
    (``gc_paused``: ~4x faster on such pages)."""
    try:
        with gc_paused():
            return orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload(
            f"{what} is not valid JSON ({exc.__class__.__name__}: {exc}); the raw body is kept at {where}"
        ) from None
