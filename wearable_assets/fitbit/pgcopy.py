"""PostgreSQL binary COPY data for ``wearables.fitbit_intraday``, encoded column-wise.

psycopg's ``write_row`` formats one Python tuple at a time (~3 us a row, ~0.3 s of a 1-s
heart-rate day's load). Within a ``Batch`` every row has the same participant, metric and
source, and the device takes one of a few values, so for each device the rows have a fixed
byte layout: a numpy structured array with big-endian fields produces them all at once.
The layout is the COPY binary format documented by PostgreSQL (per row: field count, then per
field a length and the value; -1 length for NULL).
"""

from __future__ import annotations

import struct

import numpy as np

from wearable_assets.fitbit.canonical import INTRADAY_COLUMNS, Batch

#: Signature, flags and header-extension length that open every binary COPY stream.
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: The field count -1 that closes it.
TRAILER = struct.pack(">h", -1)
#: ``timestamptz`` is sent as microseconds since 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800 * 1_000_000
_NULL = struct.pack(">i", -1)


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode("utf-8")
    return struct.pack(">i", len(data)) + data


def encode(batch: Batch, participant_id: str, source: str) -> bytes:
    """The batch's rows in ``INTRADAY_COLUMNS`` order, as binary COPY rows (no header)."""
    head = (struct.pack(">h", len(INTRADAY_COLUMNS)) + _text(participant_id) + _text(batch.metric)
            + struct.pack(">i", 8))
    pg_ts = batch.ts - _PG_EPOCH_US
    parts = []
    for code, device in enumerate(batch.devices):
        rows = np.flatnonzero(batch.device == code)
        if not len(rows):
            continue
        tail = _text(source) + _text(device)
        layout = np.dtype([("head", f"V{len(head)}"), ("ts", ">i8"), ("value_len", ">i4"), ("value", ">f8"),
                           ("offset_len", ">i4"), ("offset", ">i2"), ("tail", f"V{len(tail)}")])
        out = np.empty(len(rows), dtype=layout)
        out["head"] = np.void(head)
        out["ts"] = pg_ts[rows]
        out["value_len"] = 8
        out["value"] = batch.value[rows]
        out["offset_len"] = 2
        out["offset"] = batch.offset[rows]
        out["tail"] = np.void(tail)
        parts.append(out.tobytes())
    return b"".join(parts)
