"""Rounds of truly concurrent work: N worker *processes* released together by a barrier.

Threads would share one GIL and one set of module globals (the lock's per-thread bookkeeping,
dlt's and the HTTP limiters' state); separate processes are what two Dagster run workers are.
The workers are started once (``spawn``, so nothing of the test process is inherited) and run
every round: all parties meet at the barrier, the workers do their job at the same moment, meet
again, and the test process checks the result before the next round starts.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from threading import BrokenBarrierError
from typing import Any

CTX = mp.get_context("spawn")
#: A round that takes longer than this is a hang (a lock never released), not slowness.
ROUND_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Outcome:
    """What one worker's job did in one round: its return value, or the error it raised."""

    worker: int
    round: int
    value: Any = None
    error: str | None = None


def _work(worker: int, job: Callable[..., Any], args: tuple[Any, ...], rounds: int, barrier: Any,
          results: Any) -> None:
    try:
        for round_ in range(rounds):
            barrier.wait(ROUND_TIMEOUT_S)
            try:
                results.put(Outcome(worker, round_, value=job(*args, worker, round_)))
            except Exception as exc:  # reported to the test, which fails on it
                results.put(Outcome(worker, round_, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            barrier.wait(ROUND_TIMEOUT_S)
    except BrokenBarrierError:
        return  # the test process gave up (a failed check): stop quietly


def run_rounds(job: Callable[..., Any], args: tuple[Any, ...], *, workers: int, rounds: int,
               check: Callable[[int, list[Outcome]], None],
               before: Callable[[int], None] | None = None) -> None:
    """Run ``job(*args, worker, round)`` in ``workers`` processes at once, ``rounds`` times.

    ``before(round)`` runs in the test process before each round is released, ``check(round,
    outcomes)`` after every worker has finished it (outcomes sorted by worker). ``job`` must be
    a module-level function (it is pickled by name)."""
    barrier = CTX.Barrier(workers + 1)
    results = CTX.Queue()
    procs = [CTX.Process(target=_work, args=(w, job, args, rounds, barrier, results), daemon=True)
             for w in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for round_ in range(rounds):
            if before is not None:
                before(round_)
            barrier.wait(ROUND_TIMEOUT_S)
            barrier.wait(ROUND_TIMEOUT_S)
            outcomes = sorted((results.get(timeout=10) for _ in range(workers)), key=lambda o: o.worker)
            assert [o.round for o in outcomes] == [round_] * workers
            check(round_, outcomes)
    finally:
        barrier.abort()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()


def errors(outcomes: Sequence[Outcome]) -> list[str]:
    return [o.error for o in outcomes if o.error is not None]
