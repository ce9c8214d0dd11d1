"""Participants side by side inside one run: what a ranged run's fetch steps share.

Why: a ranged run's API steps spend most of their time waiting for the provider's replies (a
Google Health participant-day is ~15-25 requests; remote APIs answer in tens to hundreds of
milliseconds). Fetching a few participants at once overlaps those waits. Each participant's own
days stay in order on one thread: one client (one access token, one per-participant rate-limit
key) and the same request pattern a sequential run sends for that participant, so per-user
limits hold whatever the number of threads. Results come back in the input's order, and an
exception that escapes a participant (the callers turn every participant-day failure into an
outcome; only e.g. a lost database escapes) is raised in the step's thread after the other
participants finish, as it would be sequentially.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from typing import TypeVar

from wearable_assets.participant_day import ParticipantDay

T = TypeVar("T")
R = TypeVar("R")


def by_participant(days: Iterable[ParticipantDay]) -> list[list[ParticipantDay]]:
    """The participant-days grouped by participant (participants and days sorted)."""
    ordered = sorted(days, key=lambda d: (d.participant_id, d.day))
    return [list(group) for _, group in groupby(ordered, key=lambda d: d.participant_id)]


def in_parallel(work: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[work(item) for item in items]`` on up to ``threads`` threads, in the items' order."""
    if threads <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="participant") as pool:
        futures = [pool.submit(work, item) for item in items]
    return [future.result() for future in futures]
