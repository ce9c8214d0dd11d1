"""Loading one Fitbit participant-day into TimescaleDB: the project's loader vs the alternatives.

One participant-day with 1-s heart rate (86,400 samples) plus the per-minute activity metrics
(~92K rows), fetched once from the Google Health simulator and landed in a temporary lake
exactly as ``fitbit/raw_payloads`` does (untimed). Then, each in a fresh process so peak RSS is
its own, and interleaved over several rounds, the same landed payloads are parsed AND loaded by:

* ``project``      ``ingest.load_timescale``: parse + DELETE participant-day + binary COPY + status row,
                   one transaction (what the ``fitbit/intraday`` asset runs), in a *loader process*:
                   the plain ``Timescale`` / ``Lake`` writers, nothing Dagster-related imported;
* ``project-worker`` the same load through ``TimescaleResource`` / ``LakeResource`` in a process that
                   first imports the whole code location (``wearable_assets.definitions``), i.e. what
                   a Dagster run worker holds; timed like the others, shown for its peak RSS;
* ``executemany``  the same parse, then DELETE + psycopg ``executemany`` INSERTs in one transaction;
* ``dlt``          the same columnar parse into the lake's Arrow table (``ingest.intraday_arrow``), then
                   dlt's postgres destination (``replace``; dlt writes its own plain table in schema
                   ``bench_dlt``, not the hypertable).

Each timed load goes into an empty participant-day (tables truncated and a CHECKPOINT first,
untimed). Timing starts before parsing (gzip JSON from the lake) and ends after COMMIT. Peak RSS is
the process's VmHWM from the end of its imports on (reset there: the imports' resident memory
counts, their transient peaks do not), reported with that import baseline. A benchmark, not a
test: it prints what it measured and asserts nothing. Target: project loader >= 200K rows/s,
< 150 MB peak RSS per participant-day.

    .venv/bin/python benchmarks/fitbit_load.py [--rounds 3] [--keep]

Uses the project-local TimescaleDB (started if needed) or $WEARABLES_TIMESCALE_DSN, in a scratch
database of its own (``wearables_bench_fitbit``), dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DB_NAME = "wearables_bench_fitbit"
DAY = date(2026, 11, 10)
PARTICIPANT = "P001"
METHODS = ("project", "project-worker", "executemany", "dlt")


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- child: one measured load -------------------------------------------------------------
def child(method: str, dsn: str, lake_dir: str) -> None:
    import psycopg

    if method == "project-worker":
        import wearable_assets.definitions  # noqa: F401  (what a run worker has loaded before any asset runs)
        from wearable_assets.storage.resources import LakeResource, TimescaleResource

        timescale = TimescaleResource(dsn=dsn, apply_migrations=False)
        lake = LakeResource(url=lake_dir)
    else:
        from wearable_assets.storage.lake import Lake
        from wearable_assets.storage.timescale import Timescale

        timescale, lake = Timescale(dsn, apply_migrations=False), Lake(lake_dir)
    from wearable_assets.fitbit import ingest
    from wearable_assets.fitbit import manifest as fitbit_manifest
    from wearable_assets.fitbit.canonical import INTRADAY_COLUMNS, INTRADAY_TABLE
    from wearable_assets.participant_day import ParticipantDay

    if method == "dlt":
        import dlt  # imported before the clock starts: import cost is baseline, not load
    pday = ParticipantDay(DAY, PARTICIPANT)
    # Every method loads into an empty participant-day (a first load), set up outside the timing.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {INTRADAY_TABLE}, wearables.fitbit_sleep_stages, wearables.ingest_status")
        conn.execute("DROP SCHEMA IF EXISTS bench_dlt CASCADE")
        conn.execute("CHECKPOINT")
    dagster_imported = "dagster" in sys.modules
    baseline = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS

    started = time.perf_counter()
    if method in ("project", "project-worker"):
        rows = ingest.load_timescale(timescale, lake, pday).rows
    elif method == "executemany":
        manifest = fitbit_manifest.read_manifest(lake, pday)
        parsed, stream = ingest.open_landed(lake, pday, manifest)  # type: ignore[arg-type]
        intraday = list(stream)
        rows = len(intraday)
        window = parsed.window
        insert = (f"INSERT INTO {INTRADAY_TABLE} ({', '.join(INTRADAY_COLUMNS)}) "
                  f"VALUES ({', '.join(['%s'] * len(INTRADAY_COLUMNS))})")
        with psycopg.connect(dsn) as conn:
            conn.execute(f"DELETE FROM {INTRADAY_TABLE} WHERE participant_id = %s AND ts >= %s AND ts < %s",
                         (PARTICIPANT, window.start, window.end))
            with conn.cursor() as cur:
                cur.executemany(insert, intraday)
    else:
        manifest = fitbit_manifest.read_manifest(lake, pday)
        parsed, batches = ingest.open_landed_batches(lake, pday, manifest)  # type: ignore[arg-type]
        table = ingest.intraday_arrow(batches, PARTICIPANT, parsed.source, DAY)
        rows = table.num_rows
        c = psycopg.conninfo.conninfo_to_dict(dsn)
        # dlt insists on a password; the local server trusts loopback, so any value does.
        url = (f"postgresql://{c.get('user', '')}:{c.get('password') or 'unused'}"
               f"@{c.get('host', '127.0.0.1')}:{c.get('port', 5432)}/{c['dbname']}")
        with tempfile.TemporaryDirectory() as pipelines_dir:
            pipeline = dlt.pipeline(pipeline_name="bench_fitbit", pipelines_dir=pipelines_dir,
                                    destination=dlt.destinations.postgres(credentials=url),
                                    dataset_name="bench_dlt")
            info = pipeline.run(dlt.resource(table, name="fitbit_intraday", write_disposition="replace"))
            info.raise_on_failed_jobs()
    seconds = time.perf_counter() - started
    print(json.dumps({"method": method, "rows": rows, "seconds": seconds, "baseline_mb": baseline,
                      "peak_mb": rss_mb("VmHWM"), "dagster_imported": dagster_imported}))


# --- parent: prepare, run, report -----------------------------------------------------------
def prepare(dsn: str, lake_dir: str, provider: str) -> int:
    """Scratch schema, one participant, and the landed payloads of one 1-s participant-day,
    fetched from the ``provider``'s simulator exactly as the raw asset does."""
    from wearable_assets.fitbit import landing
    from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
    from wearable_assets.oauth.crypto import generate_key
    from wearable_assets.participant_day import ParticipantDay
    from wearable_assets.participants import store as participant_store
    from wearable_assets.participants.sync import upsert_participants
    from wearable_assets.roster import Participant
    from wearable_assets.storage.lake import Lake
    from wearable_assets.storage.timescale import Timescale
    from wearable_assets_dev.simulators.cohort import SyntheticCohort
    from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
    from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

    timescale = Timescale(dsn)
    timescale.migrate()
    participant = Participant(PARTICIPANT, "BENCH", "America/New_York", date(2026, 1, 1),
                              fitbit_provider=provider, fitbit_user_id=PARTICIPANT)
    upsert_participants(timescale, [participant])
    cohort = SyntheticCohort.from_roster([participant], now=datetime(2026, 11, 25, tzinfo=timezone.utc),
                                         hr_interval_s=1)
    found = participant_store.load(timescale, [PARTICIPANT])[PARTICIPANT]
    pday, lake = ParticipantDay(DAY, PARTICIPANT), Lake(lake_dir)
    if provider == "google_health":
        with GoogleHealthSimulator(cohort) as sim:
            google = GoogleHealthResource(client_id=sim.client_id, client_secret=sim.client_secret,
                                          token_key=generate_key(), auth_url=sim.auth_url, token_url=sim.token_url,
                                          base_url=sim.base_url)
            google.token_store(timescale).save(PARTICIPANT, provider, sim.state.issue_tokens(PARTICIPANT))
            outcome = landing.land_day(pday, found, google.client(PARTICIPANT, timescale), lake, timescale)
    else:
        with FitbitLegacySimulator(cohort, mode="working") as sim:
            legacy = FitbitLegacyResource(client_id=sim.client_id, client_secret=sim.client_secret,
                                          token_key=generate_key(), base_url=sim.base_url)
            legacy.token_store(timescale).save(PARTICIPANT, provider, sim.state.issue_tokens(PARTICIPANT, "BENCH1"))
            outcome = landing.land_day(pday, found, legacy.client(PARTICIPANT, timescale), lake, timescale)
    if outcome.status != "ok":
        raise SystemExit(f"could not land the benchmark day: {outcome.detail}")
    return sum(p.stat().st_size for p in Path(lake_dir).rglob("*.json.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--providers", nargs="+", default=["google_health", "fitbit_legacy"],
                        choices=["google_health", "fitbit_legacy"], help="payload formats to load")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dsn, args.lake)
        return

    from wearable_assets.storage.local_server import ensure_server, scratch_database

    server, _ = ensure_server()
    dsn = scratch_database(server, DB_NAME)
    try:
        for provider in args.providers:
            with tempfile.TemporaryDirectory(prefix="fitbit-bench-") as lake_dir:
                print(f"\n== {provider}: fetching one 1-s participant-day from its simulator ...", flush=True)
                landed = prepare(dsn, lake_dir, provider)
                raw = sum(len(gzip.decompress(p.read_bytes())) for p in Path(lake_dir).rglob("*.json.gz"))
                print(f"landed {raw / 1e6:.1f} MB of JSON ({landed / 1e6:.1f} MB gzip); "
                      f"{args.rounds} rounds x {len(METHODS)} methods; {load_average()} before", flush=True)
                results: dict[str, list[dict]] = {m: [] for m in METHODS}
                for _ in range(args.rounds):
                    for method in METHODS:
                        out = subprocess.run([sys.executable, __file__, "--child", method, "--dsn", dsn, "--lake",
                                              lake_dir], capture_output=True, text=True)
                        if out.returncode != 0:
                            raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
                        results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
            report(results)
            print(f"{load_average()} after (other work on the machine skews every method alike)")
    finally:
        if not args.keep:
            scratch_database(server, DB_NAME, create=False)


def load_average() -> str:
    """The machine is shared: numbers mean little without the load they were measured under."""
    return "load average (1/5/15 min) " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(results: dict[str, list[dict]]) -> None:
    def median(method: str, key: str) -> float:
        return statistics.median(r[key] for r in results[method])

    project_rate = results["project"][0]["rows"] / median("project", "seconds")
    print()
    print(f"{'method':<15} {'rows':>7} {'median s':>9} {'rows/s':>9} {'vs project':>11} "
          f"{'peak RSS MB':>12} {'imports MB':>11} {'over imports':>13}  dagster imported")
    for method in METHODS:
        rows = results[method][0]["rows"]
        seconds = median(method, "seconds")
        rate = rows / seconds
        peak, base = median(method, "peak_mb"), median(method, "baseline_mb")
        dagster = "yes" if any(r["dagster_imported"] for r in results[method]) else "no"
        print(f"{method:<15} {rows:>7} {seconds:>9.3f} {rate:>9,.0f} {rate / project_rate:>10.2f}x "
              f"{peak:>12.0f} {base:>11.0f} {peak - base:>13.0f}  {dagster}")
    print("\n(each row: median of the rounds; parse of the landed gzip JSON included; 'imports MB' = RSS "
          "after imports and connecting; 'over imports' = peak RSS minus that)")

    def rss(method: str) -> str:
        peak, base = median(method, "peak_mb"), median(method, "baseline_mb")
        verdict = "meets" if peak < 150 else "does not meet"
        return f"{peak:.0f} MB ({base:.0f} MB imports + {peak - base:.0f} MB load; {verdict} < 150 MB)"

    print(f"peak RSS of the project load: loader process {rss('project')}; "
          f"Dagster run worker (code location imported) {rss('project-worker')}")


if __name__ == "__main__":
    main()
