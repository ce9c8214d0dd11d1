"""Google Health point lists read column-wise with Arrow: the fast path of a Google load.

A 1-s heart-rate day is ~46 MB of JSON in ~18 pages. Decoding it into Python dicts (even with
orjson) and walking them point by point was most of a load's time. Arrow's JSON reader,
given only the fields we store, builds columns directly; the timestamp, offset and value
strings are then converted in bulk.

This path is deliberately narrow. It accepts a page only if every point has exactly the
documented shape *and* every string is in the plain form the per-point parser would read the
same way (``...T..:..:..Z`` physical times, ``-18000s`` offsets, integer values); anything else
(a missing field, a number where a string belongs, a null, non-ASCII bytes, a value that
does not parse, invalid JSON) returns ``None`` and the caller falls back to the per-point code,
which handles the case or raises the error naming the point. So the two paths cannot disagree
on what a day contains: the fast one only ever sees input both read identically.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wearable_assets.fitbit import arrow_json
from wearable_assets.fitbit.canonical import as_numpy, timestamps_us

#: Data types whose value is an int64, sent as a JSON string (the bulk of a day's points).
INT64_VALUED = frozenset({"heart-rate", "steps", "distance", "floors", "active-zone-minutes"})

# Year 1000-9999 and in-range clock fields: Arrow would accept year 0 and Python would not.
_PHYSICAL = r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z$"
_OFFSET = r"^-?[0-9]{1,6}s$"
_INT64 = r"^-?[0-9]{1,15}$"  # at most 15 digits: exact as a float64, as float() would give
_MAX_OFFSET_MIN = 24 * 60  # utc_offset_min is a smallint; real offsets are within +-14 h

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str | None, ...]]


def _schema(union: str, time_field: str, time_keys: tuple[str, str], path: tuple[str, ...]) -> pa.Schema:
    value: pa.DataType = pa.string()
    for key in reversed(path[1:]):
        value = pa.struct([(key, value)])
    body = pa.struct([(time_field, pa.struct([(k, pa.string()) for k in time_keys])), (path[0], value)])
    source = pa.struct([("platform", pa.string()), ("device", pa.struct([("displayName", pa.string())]))])
    return pa.schema([("dataPoints", pa.list_(pa.struct([(union, body), ("dataSource", source)])))])


def _all_match(strings: pa.Array, pattern: str) -> bool:
    if strings.null_count:
        return False
    return len(strings) == 0 or bool(pc.all(pc.match_substring_regex(strings, pattern)).as_py())


def _devices(source: pa.Array) -> tuple[np.ndarray, tuple[str | None, ...]]:
    """Per point, a code into the distinct ``platform:displayName`` labels (None if neither)."""
    # null_encoding="encode": absent fields become a None entry of the dictionary (no fill_null,
    # whose scalar conversion imports pandas).
    platform = pc.dictionary_encode(pc.struct_field(source, "platform"), null_encoding="encode")
    display = pc.dictionary_encode(pc.struct_field(source, ["device", "displayName"]), null_encoding="encode")
    width = len(display.dictionary)
    pairs = as_numpy(platform.indices).astype(np.int64) * width + as_numpy(display.indices)
    unique = np.flatnonzero(np.bincount(pairs))  # pairs are small: a day has a device or two
    codes = np.searchsorted(unique, pairs)
    names, models = platform.dictionary.to_pylist(), display.dictionary.to_pylist()
    labels = tuple(":".join(part for part in (names[key // width], models[key % width]) if part) or None
                   for key in unique.tolist())
    return codes.astype(np.intp), labels


def parse_points(body: bytes, union: str, time_field: str, time_keys: tuple[str, str],
                 path: tuple[str, ...]) -> Columns | None:
    """(ts epoch us, value, utc_offset_min, device codes, device labels) of every point in
    order, or None when the page is not in the exact shape this path reads (see module doc)."""
    table = arrow_json.read_object(body, _schema(union, time_field, time_keys, path))
    if table is None:
        return None
    try:
        return _columns(table, union, time_field, time_keys, path)
    except pa.lib.ArrowException:  # a string that matched the patterns but is no date (Feb 30)
        return None


def _columns(table: pa.Table, union: str, time_field: str, time_keys: tuple[str, str],
             path: tuple[str, ...]) -> Columns | None:
    lists = table.column("dataPoints").combine_chunks()
    if lists.null_count:
        return None
    points = lists.flatten()
    point_body = pc.struct_field(points, union)
    if points.null_count or point_body.null_count:
        return None
    when = pc.struct_field(point_body, time_field)
    physical = pc.struct_field(when, time_keys[0])
    offset = pc.struct_field(when, time_keys[1])
    value = pc.struct_field(point_body, list(path))
    if when.null_count or not (_all_match(physical, _PHYSICAL) and _all_match(offset, _OFFSET)
                               and _all_match(value, _INT64)):
        return None
    ts = timestamps_us(pc.cast(physical, pa.timestamp("us", tz="UTC")))
    seconds = as_numpy(pc.cast(pc.utf8_slice_codeunits(offset, 0, -1), pa.int64()))
    minutes = seconds // 60  # floor, like the per-point parser's ``//``
    if len(minutes) and np.abs(minutes).max() > _MAX_OFFSET_MIN:
        return None
    values = as_numpy(pc.cast(value, pa.int64())).astype(np.float64)
    device, devices = _devices(pc.struct_field(points, "dataSource"))
    return ts, values, minutes.astype(np.int16), device, devices
