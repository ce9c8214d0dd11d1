"""How long Dagster takes to show partition status for 1,000 participants x 730 days.

Dagster advises staying under ~25K partitions per asset; the project's date x participant
partitions reach 730,000 for 1,000 participants over two years. This measures what that costs,
on the default sqlite storage and on Postgres (a database on the project's TimescaleDB server):

1. adding the participants (dynamic partitions);
2. Dagster's own bookkeeping per materialization event (a few hundred written through the API);
3. the asset page's partition status for ``participant_day_summary`` with EVERY participant-day
   materialized, through the real webserver's GraphQL (what the UI's partition bar loads):
   cold (status cache built from the event log) and warm (cache reused);
4. one tick of the rollups' automation condition (what ``rollups_automation`` evaluates) over
   that partition space, after one upstream participant-day changed.

Step 3 needs 730K materialization events. Writing them through Dagster costs what step 2
prints per event (hours on sqlite), so the API-written events are cloned with SQL, one per
participant-day, into the event log table Dagster reads them from (``event_logs``: asset key,
event type, partition); from there on everything is Dagster's own code. A benchmark, not a
test: it prints what it measured and asserts nothing.

    .venv/bin/python benchmarks/partition_status.py [--participants 1000] [--days 730]
        [--storage sqlite,postgres] [--api-events 300]

Uses the project-local TimescaleDB for the Postgres run (database ``wearables_bench_dagster``,
dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_DB = "wearables_bench_dagster"
ASSET = "participant_day_summary"
UPSTREAM = ["fitbit", "intraday"]

STATUS_QUERY = """
query Status($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      partitionStats { numMaterialized numPartitions numFailed numMaterializing }
      assetPartitionStatuses {
        __typename
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges { primaryDimStartKey primaryDimEndKey
                   secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } }
        }
      }
    }
  }
}"""


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _pg_url(dbname: str) -> tuple[str, str]:
    """(SQLAlchemy URL for Dagster, libpq DSN) of ``dbname`` on the project's server."""
    import psycopg

    from wearable_assets import settings

    info = psycopg.conninfo.conninfo_to_dict(settings.timescale_dsn())
    password = f":{info['password']}" if info.get("password") else ""
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", 5432), info.get("user", "postgres")
    return (f"postgresql+psycopg2://{user}{password}@{host}:{port}/{dbname}",
            psycopg.conninfo.make_conninfo(settings.timescale_dsn(), dbname=dbname))


def _recreate_pg_database(drop_only: bool = False) -> None:
    from wearable_assets.storage.local_server import ensure_server, scratch_database

    scratch_database(ensure_server()[0], PG_DB, create=not drop_only)


def _clone_events(storage: str, home: Path, partitions: list[str]) -> float:
    """Copy the newest API-written materialization once per partition key; returns seconds."""
    select = ("SELECT run_id, event, dagster_event_type, timestamp, step_key, asset_key FROM event_logs "
              "WHERE asset_key = ? AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id DESC LIMIT 1")
    insert = ("INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)")
    key = f'["{ASSET}"]'
    start = time.perf_counter()
    if storage == "sqlite":
        conn = sqlite3.connect(home / "history" / "runs" / "index.db")
        template = conn.execute(select, (key,)).fetchone()
        with conn:
            conn.executemany(insert, (template + (p,) for p in partitions))
        conn.close()
    else:
        import psycopg

        _, dsn = _pg_url(PG_DB)
        with psycopg.connect(dsn) as conn:
            template = conn.execute(select.replace("?", "%s"), (key,)).fetchone()
            columns = "run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition"
            with conn.cursor() as cur, cur.copy(f"COPY event_logs ({columns}) FROM STDIN") as copy:
                for p in partitions:
                    copy.write_row(template + (p,))
            conn.commit()
    return time.perf_counter() - start


def run_storage(storage: str, participants: int, days: int, api_events: int, work: Path) -> dict[str, object]:
    import dagster as dg

    from wearable_assets import settings
    from wearable_assets.definitions import defs
    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, participant_day_partitions
    from wearable_assets_dev.webserver import DagsterDev

    home = work / f"home_{storage}"
    home.mkdir()
    template = (settings.REPO_ROOT / "dagster.yaml").read_text()
    env: dict[str, str] = {}
    if storage == "postgres":
        _recreate_pg_database()
        url, _ = _pg_url(PG_DB)
        env["DAGSTER_PG_URL"] = url
        os.environ["DAGSTER_PG_URL"] = url
        template += "\nstorage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
    (home / "dagster.yaml").write_text(template)
    result: dict[str, object] = {"storage": storage}

    ids = [f"P{n:04d}" for n in range(1, participants + 1)]
    first = date.fromisoformat(settings.partition_start())
    day_keys = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result["add participants s"], _ = _timed(lambda: instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ids))
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            result["partitions"] = participant_day_partitions.get_num_partitions()
        # Dagster's bookkeeping cost per materialization event, through the public API.
        api_keys = [f"{day_keys[-1 - i % days]}|{ids[i // days % participants]}" for i in range(api_events)]
        spent, _ = _timed(lambda: [instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=ASSET, partition=k)) for k in api_keys])
        result["ms per event (API)"] = 1000 * spent / api_events
        everything = [f"{d}|{p}" for p in ids for d in day_keys]
        result["clone events s"] = _clone_events(storage, home, everything)
        # A last real event, so the asset record points past the clones (as after a real run).
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=ASSET, partition=everything[-1]))

        # Automation: initial tick, then one upstream participant-day changes.
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=UPSTREAM, partition=everything[0]))
        spent, evaluation = _timed(lambda: dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                                                             cursor=cursor))
        result["automation tick s"] = spent
        result["automation requested"] = evaluation.total_requested

    # The webserver alone: the daemon's sensors would compete for the CPU being measured.
    with DagsterDev(home, env, log_path=work / f"webserver_{storage}.log", daemon=False) as dev:
        loads = []
        for _ in range(4):
            spent, data = _timed(lambda: dev.client.query(STATUS_QUERY, {"path": [ASSET]}))
            loads.append(spent)
        stats = data["assetNodeOrError"]["partitionStats"]
    result["numMaterialized"] = stats["numMaterialized"]
    result["numPartitions"] = stats["numPartitions"]
    result["status cold s"] = loads[0]
    result["status warm s"] = statistics.median(loads[1:])
    if storage == "postgres":
        _recreate_pg_database(drop_only=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--storage", default="sqlite,postgres")
    parser.add_argument("--api-events", type=int, default=300)
    args = parser.parse_args()

    # The daily dimension must hold --days complete days before today.
    from datetime import datetime, timezone

    start = datetime.now(timezone.utc).date() - timedelta(days=args.days)
    os.environ["WEARABLES_PARTITION_START"] = start.isoformat()
    import warnings

    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="wearables-partition-status-"))
    rows = []
    try:
        for storage in args.storage.split(","):
            print(f"== {storage}: {args.participants} participants x {args.days} days ...", flush=True)
            rows.append(run_storage(storage, args.participants, args.days, args.api_events, work))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    names = [k for k in rows[0] if k != "storage"]
    print()
    print(f"{'':28s}" + "".join(f"{r['storage']:>14s}" for r in rows))
    for name in names:
        cells = []
        for r in rows:
            value = r[name]
            cells.append(f"{value:>14.3f}" if isinstance(value, float) else f"{value:>14}")
        print(f"{name:28s}" + "".join(cells))


if __name__ == "__main__":
    main()
