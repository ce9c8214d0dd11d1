"""The AIP-160 filter subset the v4 list methods accept, and the UTC span a filter can match.

Clauses ``member >= "x"`` / ``member < "x"`` on a type's physical time, civil time or date,
joined by ``AND`` (sleep also ``OR``); wrong members, literals and syntax answer 400 with the
reason the real API gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from wearable_assets_dev.simulators.cohort import UTC, to_epoch
from wearable_assets_dev.simulators.google_health.rendering import EPOCH_ORDINAL
from wearable_assets_dev.simulators.google_health.vocabulary import UNBOUNDED_HISTORY_DAYS, DataType, invalid

_CLAUSE = re.compile(r'^\s*([A-Za-z0-9_.\-]+)\s*(>=|<)\s*"([^"]*)"\s*$')
_CIVIL_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")


@dataclass
class Bound:
    kind: str  # physical | civil | date
    op: str  # >= | <
    value: int  # epoch seconds (physical), naive-local epoch seconds (civil), date ordinal (date)


def parse_literal(kind: str, text: str) -> int:
    if kind == "physical":
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise invalid(f'"{text}" is not an RFC 3339 timestamp', "INVALID_FILTER_FORMAT") from None
        if dt.tzinfo is None:
            raise invalid(
                f'"{text}" has no UTC offset; physical-time members take RFC 3339 timestamps such as '
                '"2026-11-20T05:00:00Z"',
                "INVALID_FILTER_FORMAT",
            )
        return to_epoch(dt)
    if kind == "civil":
        if not _CIVIL_LITERAL.match(text):
            raise invalid(
                f'"{text}" is not a civil date-time (YYYY-MM-DD[THH:mm:ss], no offset)',
                "INVALID_DATA_POINT_FILTER_CIVIL_DATE_TIME_FORMAT",
            )
        return to_epoch(datetime.fromisoformat(text).replace(tzinfo=UTC))
    try:
        return date.fromisoformat(text).toordinal()
    except ValueError:
        raise invalid(f'"{text}" is not a date (YYYY-MM-DD)', "INVALID_FILTER_FORMAT") from None


def parse_filter(text: str, dtype: DataType) -> list[list[Bound]]:
    """AIP-160 subset the API accepts: clauses ``member >= "x"`` / ``member < "x"`` joined by
    ``AND`` (sleep also ``OR``). Returns a disjunction of conjunctions."""
    text = (text or "").strip()
    if not text:
        return [[]]
    groups = re.split(r"\s+OR\s+", text)
    if len(groups) > 1 and dtype.record != "session":
        raise invalid("OR is only supported in sleep filters", "INVALID_DATA_POINT_FILTER_SYNTAX")
    fields = dtype.filter_fields()
    prefixes = {dtype.snake, dtype.camel} if dtype.record == "daily" else {dtype.snake}
    out: list[list[Bound]] = []
    for group in groups:
        bounds = []
        for clause in re.split(r"\s+AND\s+", group):
            m = _CLAUSE.match(clause)
            if not m:
                raise invalid(f"cannot parse filter clause {clause.strip()!r}", "INVALID_DATA_POINT_FILTER_SYNTAX")
            member, op, literal = m.groups()
            prefix, _, rest = member.partition(".")
            if "-" in prefix:
                raise invalid(
                    f"data type {prefix!r} in a filter must be snake_case (e.g. {dtype.snake!r})",
                    "INVALID_DATA_POINT_FILTER",
                )
            if prefix not in prefixes or rest not in fields:
                allowed = ", ".join(f"{dtype.snake}.{f}" for f in fields)
                raise invalid(
                    f"{member!r} cannot be filtered on for data type {dtype.path!r}; use {allowed}",
                    "INVALID_DATA_POINT_FILTER_DATA_TYPE_MEMBER",
                )
            bounds.append(Bound(fields[rest], op, parse_literal(fields[rest], literal)))
        out.append(bounds)
    return out


def bounds_mask(bounds: list[Bound], physical: np.ndarray, civil: np.ndarray, dates: np.ndarray) -> np.ndarray:
    mask = np.ones(physical.size, dtype=bool)
    for b in bounds:
        col = {"physical": physical, "civil": civil, "date": dates}[b.kind]
        mask &= (col >= b.value) if b.op == ">=" else (col < b.value)
    return mask


def utc_window(groups: list[list[Bound]], now: datetime, night: bool = False) -> tuple[int, int]:
    """A UTC span holding every point the filter can match and overlapping the days that record
    them (``night``: see ``NIGHT_TYPES``). An open side reaches back ``UNBOUNDED_HISTORY_DAYS``
    and one day more, or forward two days past ``now``."""
    lows, highs = [], []
    for bounds in groups:
        lo = hi = None
        for b in bounds:
            if b.kind == "physical":
                v, margin = b.value, 0
            else:  # civil time, or a date (its civil midnight); UTC offsets run from -12 h to +14 h
                v = b.value if b.kind == "civil" else (b.value - EPOCH_ORDINAL) * 86400
                margin = 14 * 3600
            if b.op == ">=":
                lo = v - margin if lo is None else max(lo, v - margin)
            else:
                hi = v + margin if hi is None else min(hi, v + margin)
        lows.append(lo if lo is not None else to_epoch(now) - (UNBOUNDED_HISTORY_DAYS + 1) * 86400)
        highs.append((hi + 86400 if night else hi) if hi is not None else to_epoch(now) + 2 * 86400)
    return min(lows), max(highs)
