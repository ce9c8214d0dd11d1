"""The network latency a simulator adds to each request (``SimulatorState.latency``, common.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Latency:
    """How long each API request waits before it is answered, as a remote API would make it.

    A loopback simulator answers in well under a millisecond, so a pipeline measured against it
    never waits on the network and looks CPU-bound; real providers answer in tens to hundreds of
    milliseconds. Each request waits ``mean_s`` times a factor drawn uniformly from
    ``1 - jitter .. 1 + jitter`` (the mean stays ``mean_s``). The wait is an ``asyncio`` sleep:
    requests overlap while they wait and it costs the simulator no CPU. 0 (the default) = off.
    """

    mean_s: float = 0.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.mean_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"latency must be >= 0 s and its jitter within 0..1, got {self.mean_s} / {self.jitter}")

    def draw(self) -> float:
        return self.mean_s * random.uniform(1 - self.jitter, 1 + self.jitter) if self.mean_s else 0.0
