"""One landed JSON object read by Arrow, only the fields a fast path needs.

Arrow's JSON reader builds columns without a Python object per value, which is what makes the
1-s heart-rate payloads cheap to load. It is used only as a *fast path*: ``read_object``
returns None for anything it does not read exactly as orjson + the per-point parsers would
(non-ASCII bodies, not one JSON object, a field of another JSON type than the schema says,
duplicate keys, invalid JSON), and callers then take the per-point path on the decoded document.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.json as pj

#: The reader's scratch memory comes from malloc, which hands it back after each payload;
#: Arrow's default pool (mimalloc) kept it: ~6 MB more peak RSS over a Google day, same speed.
_POOL = pa.system_memory_pool()


def read_object(body: bytes, schema: pa.Schema) -> pa.Table | None:
    """The fields of ``schema`` from a body holding exactly one JSON object (one row), or None."""
    if not body.isascii():
        return None
    try:
        table = pj.read_json(
            io.BytesIO(body),
            read_options=pj.ReadOptions(block_size=len(body) + 1, use_threads=False),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            memory_pool=_POOL,
        )
    except pa.lib.ArrowException:
        return None
    return table if table.num_rows == 1 else None
