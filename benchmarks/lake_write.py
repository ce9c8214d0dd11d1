"""One lake write, timed: ``Lake.write_partition`` on the local filesystem destination.

The lake write was the largest CPU cost per participant-day (docs/orchestration.md,
"Throughput"), so it gets its own micro-benchmark: in one process, a ~92K-row table (one Fitbit
intraday participant-day) and a 10-row table (sleep stages / ActiGraph size), each written
``--writes`` times to fresh participant-days and then re-written once (the replace path). The
first write of the process ("cold") includes dlt's imports and one-time setup; the rest are
what a ranged run pays per participant-day. A benchmark, not a test: prints, asserts nothing.

    .venv/bin/python benchmarks/lake_write.py [--writes 5] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa

from wearable_assets.storage.lake import Lake, PartitionTable

DAY = date(2026, 11, 10)


def intraday(rows: int) -> pa.Table:
    """A table shaped like the Fitbit intraday lake table (one row per sample)."""
    start = datetime(2026, 11, 10, tzinfo=timezone.utc)
    return pa.table({
        "participant_id": pa.array(["P001"] * rows),
        "metric": pa.array(["heart_rate"] * rows),
        "ts": pa.array([start + timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "value": pa.array([60.0 + i % 40 for i in range(rows)], pa.float64()),
        "utc_offset_min": pa.array([0] * rows, pa.int16()),
        "source": pa.array(["google_health"] * rows),
        "device": pa.array(["tracker"] * rows),
    })


def timed(lake: Lake, table: str, participant: str, day: date, data: pa.Table) -> float:
    started = time.perf_counter()
    lake.write_partition(participant, day, [PartitionTable(table, data, {"participant_id": participant})])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the warm writes to this file")
    args = parser.parse_args()
    big, small = intraday(92_000), intraday(10)
    with tempfile.TemporaryDirectory(prefix="lake-bench-") as root:
        lake = Lake(url=root)
        cold = timed(lake, "cold", "P000", DAY, small)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        results: dict[str, list[float]] = {}
        for name, data in (("92K rows", big), ("10 rows", small)):
            results[name] = [timed(lake, name.replace(" ", "_"), f"P{n:03d}", DAY + timedelta(days=n), data)
                             for n in range(args.writes)]
            results[f"{name}, re-write"] = [timed(lake, name.replace(" ", "_"), "P000", DAY, data)]
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
    load = os.getloadavg()
    print(f"cold first write (10 rows, includes imports): {cold:.3f} s")
    for name, times in results.items():
        print(f"{name:>22}: median {statistics.median(times):.3f} s  min {min(times):.3f} s  (n={len(times)})")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
