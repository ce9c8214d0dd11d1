"""Backfill throughput through Dagster: participant-days per minute, batched runs vs one run each.

20 participants x 7 days (140 participant-days), each with Google Health and CentrePoint, from
the loopback simulators through every participant-day asset (raw payloads, TimescaleDB, the
parquet lake, checks) and the rollups, on ``dagster dev`` (webserver + daemon, the repo's
dagster.yaml: queued runs, 3 at a time, in-process steps). Modes, run one after the other on a
clean database, printed side by side:

* ``ranged``    what the daily schedule sends: ranged runs of ``participant_day_job`` planned by
                ``plan_ranges`` (``--batch`` participant-days per run, default the schedule's);
* ``backfill``  the UI's backfill button (``launchPartitionBackfill``) for all the assets: Dagster
                splits the rectangle along its smaller dimension (here the 7 dates) and then by each
                asset's BackfillPolicy;
* ``per-partition``  one run of ``participant_day_job`` per participant-day (140 runs);
* ``tick``      one tick of the daily schedule today at its default hour (09:00 UTC): the run requests its own
                planner (``plan_daily_runs``) makes for every participant of the roster (their
                local yesterday and the 3 re-pull days: ~4 participant-days each, whatever
                ``--days``), launched with the schedule's tags. ``--participants 1000 --modes tick``
                is the 1,000-participant daily tick (~4,000 participant-days).

Each mode also prints the largest peak resident memory (VmHWM) of any of its run workers; with
``--batch 10``, ``50`` and ``200`` it shows whether a run's memory grows with its participant-days.

Each mode runs once per ``--latency-ms`` value (default 0 and 150): every simulator request waits
that long (uniform jitter of +-50%, ``wearable_assets_dev.simulators.common.Latency``), as a remote
API would make it; 0 is the loopback simulators as they are (the pipeline never waits on the
network and is CPU-bound). The simulators run as threads of this benchmark process, outside the
pipeline's processes, and their CPU is reported on its own line.

Time = from the first launch to the end of the last run of the mode (the automation sensor's
follow-up runs, e.g. ``cohort_week``, are not counted). Target: >= 60 participant-days/min on
2 cores. A benchmark, not a test: it prints what it measured and asserts nothing.

    .venv/bin/python benchmarks/backfill_throughput.py [--participants 20] [--days 7]
        [--modes ranged,backfill,per-partition] [--batch 40] [--latency-ms 0,150]

Uses the project-local TimescaleDB (database ``wearables_bench_backfill``, dropped at the end).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from itertools import product
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DB_NAME = "wearables_bench_backfill"
DAGSTER_DB_NAME = "dagster_bench_backfill"
ZONES = ["America/New_York", "Europe/London", "Australia/Brisbane", "Asia/Tokyo", "America/Los_Angeles"]
ASSETS = [
    "fitbit/raw_payloads", "fitbit/intraday", "fitbit/intraday_parquet",
    "actigraph/daily_statistics_parquet", "actigraph/daily_statistics",
    "intraday_hourly", "participant_day_summary",
]
DATA_TABLES = ["fitbit_intraday", "fitbit_sleep_stages", "actigraph_daily_statistics", "ingest_status",
               "intraday_hourly", "participant_day_summary", "cohort_week"]
ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, command line, CPU seconds of the process and of its reaped children)."""
    table: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        # Fields after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15).
        cpu = sum(int(stat[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS
        table[int(entry)] = (int(stat[1]), cmdline, cpu)
    return table


def _peak_rss_mb(pid: int) -> float:
    """A live process's peak resident memory so far (VmHWM), in MB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class CpuMeter:
    """Core-seconds spent by each part of the system while a mode runs, from /proc.

    A live process's utime+stime+cutime+cstime counts itself and every child it has already
    reaped, so summing it over the live processes of a tree counts the tree once, exited
    processes included: run workers are reaped by Dagster's code server, PostgreSQL backends by
    the postmaster. Run workers are also followed one by one (polled while alive) so that the
    Dagster services (webserver, daemon, code servers) can be told apart from the runs.
    Processes that start and end between two polls (0.5 s) are counted through their parent."""

    def __init__(self, dev_pid: int) -> None:
        self.dev_pid = dev_pid
        self._workers: dict[int, float] = {}
        #: Largest peak resident memory (VmHWM) of any run worker seen while polling.
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def _descendants(table: dict[int, tuple[int, str, float]], root: int) -> list[int]:
        found, todo = [], [root]
        while todo:
            parent = todo.pop()
            kids = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
            found.extend(kids)
            todo.extend(kids)
        return found

    @staticmethod
    def _tree_cpu(table: dict[int, tuple[int, str, float]], roots: set[int], stop: int | None = None) -> float:
        """CPU of the live trees under ``roots``, leaving out the subtree of ``stop``."""
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        total, todo = 0.0, [r for r in roots if r in table]
        while todo:
            pid = todo.pop()
            if pid == stop:
                continue
            total += table[pid][2]
            todo.extend(children.get(pid, []))
        return total

    def snapshot(self) -> dict[str, float]:
        table = _proc_table()
        postmasters = {pid for pid, (ppid, cmd, _) in table.items()
                       if "postgres" in cmd.split(" ")[0] and not (ppid in table and "postgres" in table[ppid][1])}
        # Run workers: the code server starts each run as a multiprocessing "spawn" child.
        for pid in self._descendants(table, self.dev_pid):
            if "spawn_main" in table[pid][1]:
                self._workers[pid] = max(self._workers.get(pid, 0.0), table[pid][2])
                self.peak_rss_mb = max(self.peak_rss_mb, _peak_rss_mb(pid))
        dagster = self._tree_cpu(table, {self.dev_pid})
        # The simulators run as threads of this process (which also drives the benchmark);
        # dagster dev is its child, counted on its own.
        return {"simulators (this process)": self._tree_cpu(table, {os.getpid()}, stop=self.dev_pid),
                "dagster tree": dagster, "run workers": sum(self._workers.values()),
                "postgres": self._tree_cpu(table, postmasters)}

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self.snapshot()

    def __enter__(self) -> CpuMeter:
        self._start = self.snapshot()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        end = self.snapshot()
        self.used = {name: end[name] - self._start[name] for name in end}
        self.used["dagster services"] = self.used.pop("dagster tree") - self.used["run workers"]


def write_roster(path: Path, participants: int, enrolled_from: date) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["participant_id", "study_id", "time_zone", "enrolled_from", "enrolled_to", "fitbit_provider",
                      "fitbit_user_id", "centrepoint_study_id", "centrepoint_subject_id"])
        for n in range(1, participants + 1):
            pid = f"B{n:03d}"
            out.writerow([pid, "BENCH", ZONES[n % len(ZONES)], enrolled_from.isoformat(), "", "google_health", pid,
                          "2001", str(60000 + n)])


def wait_quiet(client, timeout_s: float = 900) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while client.runs(statuses=ACTIVE):
        if time.monotonic() > deadline:
            raise TimeoutError("runs still active")
        time.sleep(2)


def wait_runs(client, tags: dict[str, str], expected: int | None, timeout_s: float) -> list[dict]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        runs = client.runs(tags=tags)
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        if runs and len(done) == len(runs) and (expected is None or len(runs) >= expected):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)}/{len(runs)} runs finished for {tags}")
        time.sleep(2)


def run_mode(mode: str, dev, keys: list[tuple[date, str]], order: list[str], batch: int,  # type: ignore[no-untyped-def]
             latency_ms: float = 0.0) -> tuple[dict[str, object], list[str]]:
    """The mode's measurements, and the ids of its runs."""
    from wearable_assets.orchestration.schedules import plan_ranges

    client = dev.client
    label = f"{mode}-{uuid.uuid4().hex[:6]}"
    meter = CpuMeter(dev.pgid).__enter__()
    start = time.time()
    if mode == "tick":
        keys, tag_sets = tick_plan(order)
    if mode == "backfill":
        backfill_id = client.launch_backfill([f"{d}|{p}" for d, p in keys], ASSETS, title=label)
        state = client.wait_for_backfill(backfill_id, timeout_s=7200, poll_s=2)
        runs = client.runs(tags={"dagster/backfill": backfill_id})
        status = state["status"]
    else:
        if mode == "ranged":
            wanted: dict[str, list[date]] = {}
            for d, p in keys:
                wanted.setdefault(p, []).append(d)
            tag_sets = [r.tags() for r in plan_ranges(wanted, order, batch)]
        elif mode == "per-partition":
            tag_sets = [{"dagster/partition": f"{d}|{p}"} for d, p in keys]
        for tags in tag_sets:
            client.launch_run("participant_day_job", {**tags, "benchmark": label})
        runs = wait_runs(client, {"benchmark": label}, len(tag_sets), timeout_s=7200)
        status = "SUCCESS" if all(r["status"] == "SUCCESS" for r in runs) else "FAILURES"
    meter.__exit__()
    end = max((r["endTime"] or time.time()) for r in runs)
    minutes = (end - start) / 60
    busy = sum((r["endTime"] or end) - (r["startTime"] or end) for r in runs)
    n = len(keys)
    pipeline = meter.used["run workers"] + meter.used["dagster services"] + meter.used["postgres"]
    result = {
        "mode": f"{mode} @{latency_ms:g}ms", "status": status, "participant-days": n, "runs": len(runs),
        "failed runs": sum(r["status"] != "SUCCESS" for r in runs),
        "wall s": end - start, "participant-days/min": n / minutes,
        "mean run s": busy / max(len(runs), 1),
        "first run started after s": min((r["startTime"] or end) for r in runs) - start,
        "peak run worker RSS MB": meter.peak_rss_mb,
        **{f"core-s/pd {name}": used / n for name, used in meter.used.items()},
        # What one machine without the simulators on it would sustain, CPU-bound, on these cores.
        "pd/min if the APIs were remote": 60 * (os.cpu_count() or 1) / (pipeline / n),
    }
    return result, [r["runId"] for r in runs]


def tick_plan(order: list[str]) -> tuple[list[tuple[date, str]], list[dict[str, str]]]:
    """The participant-days and run tags of today's tick of the daily schedule (its default cron's
    hour, UTC), from the
    schedule's own planner over the participants stored from the roster."""
    from wearable_assets import settings
    from wearable_assets.orchestration.schedules import (
        DEFAULT_CRON,
        DEFAULT_MAX_PARTITIONS_PER_RUN,
        DEFAULT_REPULL_DAYS,
        plan_daily_runs,
    )
    from wearable_assets.participants import store as participant_store
    from wearable_assets.storage.resources import TimescaleResource

    hour = int(DEFAULT_CRON.split()[1])
    now = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    ranges = plan_daily_runs(participant_store.scheduled(TimescaleResource(dsn=os.environ[settings.TIMESCALE_DSN_ENV])),
                             order, now,
                             repull_days=DEFAULT_REPULL_DAYS, max_partitions_per_run=DEFAULT_MAX_PARTITIONS_PER_RUN)
    keys = [(date.fromordinal(d), p) for r in ranges
            for d in range(r.first_day.toordinal(), r.last_day.toordinal() + 1) for p in r.participants]
    return keys, [r.tags() for r in ranges]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--modes", default="ranged,backfill,per-partition")
    parser.add_argument("--batch", type=int, default=None, help="participant-days per ranged run")
    parser.add_argument("--latency-ms", default="0,150",
                        help="comma-separated API latencies (ms per request, +-50%% jitter) the simulators add; "
                        "each mode runs once per value")
    parser.add_argument("--storage", choices=["postgres", "sqlite"], default="postgres",
                        help="Dagster's own storage: postgres (what dagster.yaml recommends for production, "
                        "in a database on the local server) or sqlite (the development default)")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg
    import psycopg
    from cryptography.fernet import Fernet

    from wearable_assets import settings
    from wearable_assets.orchestration.pools import apply_pool_limits
    from wearable_assets.orchestration.schedules import DEFAULT_MAX_PARTITIONS_PER_RUN
    from wearable_assets.participants.sync import upsert_participants
    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
    from wearable_assets.roster import load_roster
    from wearable_assets.storage.local_server import ensure_server, scratch_database
    from wearable_assets.storage.resources import TimescaleResource
    from wearable_assets_dev.simulators.common import Latency
    from wearable_assets_dev.simulators.stack import SimulatorStack
    from wearable_assets_dev.webserver import DagsterDev

    batch = args.batch or DEFAULT_MAX_PARTITIONS_PER_RUN
    latencies = [float(x) for x in args.latency_ms.split(",") if x.strip()]
    server, _ = ensure_server()
    dsn = scratch_database(server, DB_NAME)
    work = Path(tempfile.mkdtemp(prefix="wearables-backfill-bench-"))
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=3 + i) for i in range(args.days)][::-1]  # long synced
    roster_path = work / "roster.csv"
    write_roster(roster_path, args.participants, days[0] - timedelta(days=7))
    roster = load_roster(roster_path)
    order = [p.participant_id for p in roster]
    keys = [(d, p) for d in days for p in order]
    home = work / "dagster_home"
    home.mkdir()
    instance_yaml = (settings.REPO_ROOT / "dagster.yaml").read_text()
    dagster_db = None
    if args.storage == "postgres":  # the documented block, uncommented, as test_instance.py does
        dagster_db = scratch_database(server, DAGSTER_DB_NAME)
        info = psycopg.conninfo.conninfo_to_dict(dagster_db)
        os.environ["DAGSTER_PG_URL"] = (f"postgresql+psycopg2://{info['user']}@{info['host']}:{info['port']}/"
                                        f"{DAGSTER_DB_NAME}")
        block = re.search(r"# >>> postgres storage\n(.*?)# <<< postgres storage", instance_yaml, re.S)
        assert block, "dagster.yaml lost its postgres storage markers"
        instance_yaml += "\n" + "\n".join(line.removeprefix("# ") for line in block.group(1).splitlines()) + "\n"
    (home / "dagster.yaml").write_text(instance_yaml)
    env = {
        settings.TIMESCALE_DSN_ENV: dsn, settings.LAKE_URL_ENV: str(work / "lake"), settings.ROSTER_PATH_ENV:
        str(roster_path), "WEARABLES_TOKEN_KEY": Fernet.generate_key().decode(), "DAGSTER_HOME": str(home),
        # Neither schedule may fire during the benchmark (the tick mode plans the ingest tick itself).
        "WEARABLES_SCHEDULE_CRON": "0 3 1 1 *", "WEARABLES_ALERT_CRON": "0 3 1 1 *",
    }
    os.environ.update(env)
    timescale = TimescaleResource(dsn=dsn)
    timescale.migrate()
    upsert_participants(timescale, roster)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, order)
        apply_pool_limits(instance)

    results = []
    try:
        with SimulatorStack(roster) as stack:
            env.update(stack.env())
            os.environ.update(stack.env())
            from wearable_assets.fitbit.resources import google_health_resource

            store = google_health_resource().process_config_and_initialize().token_store(timescale)
            for p in roster:
                store.save(p.participant_id, "google_health", stack.google.state.issue_tokens(p.participant_id))
            print(f"{len(keys)} participant-days ({args.participants} participants x {args.days} days, "
                  f"{days[0]}..{days[-1]}); {os.cpu_count()} CPUs; ranged batch {batch}; "
                  f"Dagster storage {args.storage}; API latency {latencies} ms; {load_average()}", flush=True)
            with DagsterDev(home, env) as dev:
                for latency_ms, mode in product(latencies, args.modes.split(",")):
                    for sim in (stack.google, stack.fitbit, stack.centrepoint):
                        sim.state.latency = Latency(latency_ms / 1000)
                    wait_quiet(dev.client)
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute("TRUNCATE " + ", ".join(f"wearables.{t}" for t in DATA_TABLES))
                    for sim in (stack.google, stack.fitbit, stack.centrepoint):
                        sim.state.reset_calls()
                    stack.google.state.project_quota.reset()
                    stack.centrepoint.limiter.reset()
                    result, run_ids = run_mode(mode, dev, keys, order, batch, latency_ms)
                    result.update(provider_limits(stack))
                    results.append(result)
                    print(result, flush=True)
                    print_step_times(run_ids)
                    loaded = timescale.fetch("SELECT count(*) FROM wearables.participant_day_summary")[0][0]
                    print(f"  participant_day_summary rows: {loaded} of {result['participant-days']}", flush=True)
    finally:
        scratch_database(server, DB_NAME, create=False)
        if dagster_db:
            scratch_database(server, DAGSTER_DB_NAME, create=False)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'':46s}" + "".join(f"{r['mode']:>20s}" for r in results))
    print(f"(after: {load_average()})")
    for name in results[0]:
        if name == "mode":
            continue
        cells = [f"{r[name]:>20.2f}" if isinstance(r[name], float) else f"{r[name]:>20}" for r in results]
        print(f"{name:46s}" + "".join(cells))


def print_step_times(run_ids: list[str]) -> None:
    """Where a mode's run time went: seconds per step, summed over its runs (steps of one run
    run one after another in-process, so a run's length is the sum of its steps)."""
    import dagster as dg

    totals: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for run_id in run_ids:
            for step in instance.get_run_step_stats(run_id):
                if step.start_time and step.end_time:
                    totals[step.step_key] = totals.get(step.step_key, 0.0) + step.end_time - step.start_time
    print(f"  step seconds summed over {len(run_ids)} runs:")
    for key, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"    {seconds:8.1f}  {key}")


def provider_limits(stack) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the simulators counted during the mode: requests refused (429) and the busiest
    sliding window of the limits they enforce (Google's per-project quota, CentrePoint's per-IP
    limit), against the limit."""
    from wearable_assets_dev.simulators.common import most_in_any_window

    def busiest(limit) -> str:  # type: ignore[no-untyped-def]
        most = most_in_any_window([h.at for h in limit.hits(status=200)], limit.window_s)
        return f"{most} of {limit.limit}/{limit.window_s:g}s"

    refused = [sum(c.status == 429 for c in sim.state.calls) for sim in (stack.google, stack.centrepoint)]
    return {
        "429s served (Google / CentrePoint)": f"{refused[0]} / {refused[1]}",
        "busiest window, Google project": busiest(stack.google.state.project_quota),
        "busiest window, CentrePoint IP": busiest(stack.centrepoint.limiter),
    }


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
