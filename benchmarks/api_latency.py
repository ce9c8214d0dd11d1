"""Latency of the read API: hourly heart rate from the rollup vs computed from raw samples.

One participant, 30 days (by default) of Fitbit data loaded by the project's own assets from the
Google Health simulator, rolled up by the rollup assets, then the same question asked over HTTP
both ways:

    GET /data?metric=heart_rate&resolution=1h               -> wearables.intraday_hourly
    GET /data?metric=heart_rate&resolution=1h&from_raw=true -> time_bucket over wearables.fitbit_intraday

and the latencies printed side by side with their ratio (target: rollup >= 20x faster).
A benchmark, not a test: it prints what it measured and asserts nothing about speed.

    .venv/bin/python benchmarks/api_latency.py                 # realistic irregular HR (~15-20K/day)
    .venv/bin/python benchmarks/api_latency.py --hr-interval 1 # 1-s HR, 86,400 samples a day
    .venv/bin/python benchmarks/api_latency.py --reuse         # keep/reuse the loaded database

Uses the project-local TimescaleDB (started if needed) or $WEARABLES_TIMESCALE_DSN, in a
database of its own (``wearables_bench_api[_hr<interval>]``), dropped at the end unless --reuse.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stderr
from datetime import date, timedelta
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")  # Dagster beta/preview notices, one per asset definition

from wearable_assets.storage.local_server import ensure_server, scratch_database  # noqa: E402
from wearable_assets_tests.serving.loading import load  # noqa: E402
from wearable_assets_tests.serving.servers import api_process  # noqa: E402

PARTICIPANT = "P001"
LAST_DAY = date(2026, 11, 3)
DB_NAME = "wearables_bench_api"


def has_data(dsn: str, days: int) -> bool:
    try:
        with psycopg.connect(dsn) as conn:
            (n,), = conn.execute("SELECT count(DISTINCT local_date) FROM wearables.intraday_hourly "
                                 "WHERE participant_id = %s", (PARTICIPANT,)).fetchall()
            return n >= days
    except psycopg.Error:
        return False


def timed(session: requests.Session, url: str, params: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    response = session.get(url, params=params, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=25, help="timed requests per mode (after 3 warm-ups)")
    parser.add_argument("--hr-interval", type=float, default=None, help="fixed HR grid in seconds (default: irregular)")
    parser.add_argument("--reuse", action="store_true", help="keep the database, and reuse it if already loaded")
    args = parser.parse_args()

    root, _ = ensure_server()
    db_name = DB_NAME + (f"_hr{args.hr_interval:g}".replace(".", "_") if args.hr_interval else "")
    dsn = psycopg.conninfo.make_conninfo(root, dbname=db_name)
    days = [LAST_DAY - timedelta(days=i) for i in range(args.days - 1, -1, -1)]
    if not (args.reuse and has_data(dsn, args.days)):
        scratch_database(root, db_name)
        print(f"loading {PARTICIPANT} x {args.days} days through the Fitbit and rollup assets ...", flush=True)
        started = time.perf_counter()
        # Dagster's per-run console log (a dozen DEBUG lines per partition) would bury the result.
        with tempfile.TemporaryDirectory() as lake, open(os.devnull, "w") as quiet, redirect_stderr(quiet):
            load(dsn, Path(lake), participants=(PARTICIPANT,), days=days, hr_interval_s=args.hr_interval,
                 progress=lambda s: print(f"  loaded {s}", end="\r", file=sys.stdout, flush=True))
        print(f"\nloaded in {time.perf_counter() - started:.0f} s")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    with psycopg.connect(dsn) as conn:
        (raw_rows,), = conn.execute("SELECT count(*) FROM wearables.fitbit_intraday WHERE participant_id = %s "
                                    "AND metric = 'heart_rate'", (PARTICIPANT,)).fetchall()
    params = {"participant_id": PARTICIPANT, "metric": "heart_rate", "start": days[0].isoformat(),
              "end": (LAST_DAY + timedelta(days=1)).isoformat(), "resolution": "1h", "limit": "5000"}
    modes = {"rollup": params, "raw": {**params, "from_raw": "true"}}
    results: dict[str, list[float]] = {m: [] for m in modes}
    first: dict[str, float] = {}
    bodies: dict[str, dict] = {}
    try:
        # The real server process (what `make serve` runs), so client and server share no GIL.
        with api_process(dsn) as (base_url, _), requests.Session() as session:
            url = f"{base_url}/data"
            for mode, p in modes.items():
                first[mode], bodies[mode] = timed(session, url, p)
                for _ in range(2):
                    timed(session, url, p)
            for _ in range(args.runs):  # interleaved, so drift affects both modes alike
                for mode, p in modes.items():
                    results[mode].append(timed(session, url, p)[0])
    finally:
        if not args.reuse:
            scratch_database(root, db_name, create=False)

    rolled, raw = bodies["rollup"], bodies["raw"]
    same = [p["ts"] for p in rolled["points"]] == [p["ts"] for p in raw["points"]] and all(
        abs(a["value"] - b["value"]) <= 1e-9 * max(1.0, abs(b["value"]))
        for a, b in zip(rolled["points"], raw["points"])
    )
    print(f"\none participant, {args.days} days of hourly heart rate via GET /data "
          f"({raw_rows:,} raw HR samples; {rolled['total_count']} hourly points; {args.runs} runs each)")
    print(f"{'source':<34} {'first ms':>9} {'min ms':>8} {'median ms':>10} {'p95 ms':>8}")
    for mode, label in (("rollup", rolled["source_table"]), ("raw", raw["source_table"] + " (from_raw)")):
        print(f"{label:<34} {first[mode]:>9.1f} {min(results[mode]):>8.1f} {statistics.median(results[mode]):>10.1f} "
              f"{p95(results[mode]):>8.1f}")
    ratio = statistics.median(results["raw"]) / statistics.median(results["rollup"])
    best = min(results["raw"]) / min(results["rollup"])
    print(f"rollup is {ratio:.1f}x faster by median, {best:.1f}x by best run (target >= 20x); "
          f"same points and values both ways: {same}")
    # Shared 2-core machines make medians move with whatever else runs: say how busy it was.
    print("load average during the run (1/5/15 min): " + " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
