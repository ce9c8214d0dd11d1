"""Client-side sliding-window rate limits, shared by every API client of the process.

Providers count requests in a sliding window at *their* end (Google Health: 300/min per user and
120,000/min per project; CentrePoint: 500/min per IP). A limiter that stamps a request when it
lets it go can still be over the limit at the server: a request delayed on its way (a busy
machine, a slow network) arrives later than its stamp, so the server may see ``limit + 1``
arrivals inside one window although the client spaced them a full window apart. So a request
holds its slot while it is in flight and is stamped when its answer has arrived (``slot``): the
server received it before answering, so the next request allowed a window after that stamp
arrives a window after it at the latest. However late the requests travel, the server never
sees more than ``limit`` of them in any window.

One limiter serves many keys (participants, projects, IP addresses); a request that must fit
several budgets at once (a participant's and the project's) takes its slots in all of them
together (``slots``), so waiting for one budget never spends another.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager


class WaitTooLong(RuntimeError):
    """The next allowed request is further away than the limiter is willing to wait."""


class SlidingWindowLimiter:
    """At most ``limit`` requests per ``window_s`` per key, shared by every client in the process.

    Threads of one run (and clients created per participant-day) share one instance per
    provider and budget, so concurrent work on the same key is counted together. With
    ``max_wait_s`` a request that would have to wait longer fails with ``WaitTooLong`` instead
    (an hourly budget spent early would otherwise block a worker for up to an hour).
    """

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_wait_s: float | None = None) -> None:
        if limit < 1:
            raise ValueError(f"a rate limit allows at least 1 request per window, not {limit}")
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.sleep = sleep
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        #: Per key: when each finished request of the last window was stamped (oldest first).
        self._stamps: dict[str, deque[float]] = defaultdict(deque)
        #: Per key: requests let go and not finished yet (they count until a window after they end).
        self._in_flight: dict[str, int] = defaultdict(int)

    # The two steps of taking a slot; both are called with ``self._lock`` held.
    def _pause(self, key: str, now: float) -> float:
        """0 when ``key`` has a free slot now, else how long until one may free."""
        stamps = self._stamps[key]
        while stamps and now - stamps[0] >= self.window_s:
            stamps.popleft()
        if len(stamps) + self._in_flight[key] < self.limit:
            return 0.0
        # Every slot is taken: the oldest stamp frees first; if every request is still in flight,
        # none frees before a whole window from now.
        return self.window_s - (now - stamps[0]) if stamps else self.window_s

    def _too_long(self, key: str, pause: float) -> WaitTooLong:
        per = {60.0: "minute", 3600.0: "hour"}.get(self.window_s, f"{self.window_s:g} s")
        return WaitTooLong(
            f"{key}: this process has spent the budget of {self.limit} calls per {per}; the next call is "
            f"allowed in {pause:.0f} s (more than the {self.max_wait_s:.0f} s we wait); re-run after it resets"
        )

    def _finish(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] -= 1
            self._stamps[key].append(self.clock())

    @contextmanager
    def slot(self, key: str) -> Iterator[float]:
        """Hold a slot of ``key`` for one request (send it inside); yields the seconds waited."""
        with slots([(self, key)]) as waited:
            yield waited

    def acquire(self, key: str) -> float:
        """Take a slot stamped now, for a request sent at once and not followed up; returns the
        seconds waited. Prefer ``slot``, which stamps when the answer has arrived."""
        with self.slot(key) as waited:
            return waited


@contextmanager
def slots(wanted: Sequence[tuple[SlidingWindowLimiter, str]]) -> Iterator[float]:
    """Hold one slot in each ``(limiter, key)`` for one request, all taken at the same moment.

    Waits (with the first limiter's ``sleep``) until every budget has a free slot; the locks are
    taken in one fixed order, so two requests waiting on the same limiters never deadlock.
    Yields the seconds waited; the slots are stamped when the block ends, however it ends.
    """
    limiters = sorted({id(limiter): limiter for limiter, _ in wanted}.values(), key=id)
    sleep = wanted[0][0].sleep
    waited = 0.0
    while True:
        with ExitStack() as locks:
            for limiter in limiters:
                locks.enter_context(limiter._lock)
            pauses = [(limiter._pause(key, limiter.clock()), limiter, key) for limiter, key in wanted]
            pause, limiter, key = max(pauses, key=lambda p: p[0])
            if pause <= 0:
                for limiter, key in wanted:
                    limiter._in_flight[key] += 1
                break
        if limiter.max_wait_s is not None and waited + pause > limiter.max_wait_s:
            raise limiter._too_long(key, pause)
        sleep(pause)
        waited += pause
    try:
        yield waited
    finally:
        for limiter, key in wanted:
            limiter._finish(key)


_LIMITERS: dict[tuple[str, int, float, float | None], SlidingWindowLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(name: str, limit: int, window_s: float = 60.0,
                   max_wait_s: float | None = None) -> SlidingWindowLimiter:
    """The process-wide limiter called ``name`` for one budget (one instance per budget)."""
    key = (name, limit, window_s, max_wait_s)
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = SlidingWindowLimiter(limit, window_s, max_wait_s=max_wait_s)
        return _LIMITERS[key]
