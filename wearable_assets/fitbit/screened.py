"""A participant-day's parsed and screened samples, handed from one load to the other.

``fitbit/intraday`` (TimescaleDB) and ``fitbit/intraday_parquet`` (the lake) load the same landed
payloads; a run materialises both, one after the other, in the same process. Parsing a day
(reading its gzip JSON and turning it into columns) was ~20% of a run worker's CPU, and each
load did it. Whichever load comes first keeps what it parsed here, and the other takes it
instead of parsing again (a load never takes its own: run twice, it reads the payloads again).

Exactness: an entry is keyed by the participant-day's place in the lake, the manifest's fetch
(its id and payload names: a fetch's payloads are written once, never changed), the
participant-day's time zone and the plausibility rules' version, so a hit is byte-for-byte what parsing again would give. A
re-fetch between the two loads names a new fetch, which misses. Loads in different processes
(another run, the multiprocess executor) simply miss and parse.

Memory: entries are taken (removed) by the second load, and nothing is kept once
``MAX_BYTES`` are held: a run of any size holds at most that much here, never more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from wearable_assets import plausibility
from wearable_assets.fitbit.canonical import Batch, ParsedDay
from wearable_assets.participant_day import ParticipantDay

#: Bytes of sample columns kept at most (a simulated day is ~0.5 MB, a 1-s heart-rate day ~3 MB).
MAX_BYTES = 64 * 1024 * 1024


@dataclass
class ScreenedDay:
    """What a load needs of a parsed day: its summary (``parsed``), the quarantined values
    (``screen``) and the plausible samples (``batches``)."""

    parsed: ParsedDay
    screen: plausibility.BatchScreen
    batches: list[Batch] = field(default_factory=list)
    #: True when the day was too large to keep (``keeping``): it is never handed over.
    overflowed: bool = False

    @property
    def nbytes(self) -> int:
        return sum(batch_bytes(b) for b in self.batches)


def batch_bytes(batch: Batch) -> int:
    """What keeping ``batch`` holds: its columns, plus its timestamps once more for the parser's
    per-metric index (``ParsedDay`` keeps it to drop duplicate samples)."""
    return batch.ts.nbytes * 2 + batch.value.nbytes + batch.offset.nbytes + batch.device.nbytes


def key(where: str, pday: ParticipantDay, manifest: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two parses of a participant-day identical (module docstring); ``where`` is the
    participant-day's place in the lake (two lakes, two days)."""
    return (where, pday.key, manifest["provider"], manifest.get("fetch"), tuple(manifest["payloads"]),
            manifest["time_zone"], plausibility.RULE_VERSION)


class ScreenedDays:
    """The process's hand-over between the two loads (module docstring)."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._days: dict[tuple[Any, ...], ScreenedDay] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def take(self, day_key: tuple[Any, ...]) -> ScreenedDay | None:
        """The day if the other load kept it (and forget it: each is handed over once)."""
        with self._lock:
            day = self._days.pop(day_key, None)
            if day is None:
                self.misses += 1
                return None
            self.hits += 1
            self._bytes -= day.nbytes
            return day

    def keep(self, day_key: tuple[Any, ...], day: ScreenedDay) -> None:
        """Offer a fully parsed day to the other load; dropped if it does not fit."""
        size = day.nbytes
        with self._lock:
            if day.overflowed or day_key in self._days or self._bytes + size > self.max_bytes:
                return
            self._days[day_key] = day
            self._bytes += size

    @property
    def held_bytes(self) -> int:
        return self._bytes


def keeping(batches: Iterable[Batch], into: ScreenedDay, limit: int = MAX_BYTES) -> Iterator[Batch]:
    """Pass ``batches`` through, keeping them in ``into`` while they fit in ``limit`` bytes (a day
    too large to keep is streamed as before, and simply not handed over)."""
    size = 0
    for batch in batches:
        if size <= limit:
            into.batches.append(batch)
            size += batch_bytes(batch)
        yield batch
    if size > limit:
        into.batches.clear()
        into.overflowed = True


#: The one hand-over of this process.
SCREENED = ScreenedDays()
