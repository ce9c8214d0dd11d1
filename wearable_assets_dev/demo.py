"""``make demo`` (``python -m wearable_assets_dev demo``): the main job on the embedded default stack,
then a summary a person can act on.

It runs the same code as production: the roster sync, the real OAuth enrolment (against the
simulator's auto-approving consent page), ``participant_day_job`` as one ranged run over the
demo rectangle of participant-days (recorded in ``DAGSTER_HOME``, so it shows in the UI), and
the weekly cohort rollup.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from wearable_assets import settings
from wearable_assets.roster import COLUMNS, Participant, load_roster

#: Keep the terminal readable: step logs stay in the run's event log (the UI shows them).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
_ZONES = ("America/New_York", "Australia/Brisbane", "Europe/London", "America/Los_Angeles", "Asia/Tokyo")

TABLES = (
    "participants",
    "oauth_tokens",
    "ingest_status",
    "fitbit_intraday",
    "fitbit_sleep_stages",
    "fitbit_sleep_sessions",
    "actigraph_daily_statistics",
    "intraday_hourly",
    "participant_day_summary",
    "cohort_week",
)


def demo_roster(size: int) -> Path:
    """The shipped demo roster, or a generated one of ``size`` participants for a sizeable demo."""
    shipped = settings.REPO_ROOT / "roster" / "demo_roster.csv"
    if size <= len(load_roster(shipped)):
        return shipped
    path = settings.state_dir() / f"demo_roster_{size}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for i in range(1, size + 1):
            pid = f"P{i:03d}"
            fitbit = "google_health" if i % 5 != 0 else ""
            subject = (str(1001 + i % 2), str(50000 + i)) if i % 4 != 0 else ("", "")
            writer.writerow([pid, "DEMO-01", _ZONES[i % len(_ZONES)], "2026-01-01", "", fitbit,
                             pid if fitbit else "", *subject])
    return path


@dataclass
class DemoResult:
    participants: list[str]
    first_day: date
    last_day: date
    run_id: str
    success: bool
    seconds: float
    weeks: list[str]


def run_demo(participant_count: int, days: int, last_day: date | None = None) -> DemoResult:
    """Materialise ``days`` days (ending ``last_day``, default yesterday) for the demo cohort."""
    from wearable_assets.participants.sync import apply_to_instance, partition_changes, upsert_participants
    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, weekly_partitions
    from wearable_assets.storage.timescale import Timescale
    from wearable_assets_dev.simulators.enrolment import enrol_roster
    from wearable_assets_dev.simulators.stack import SimulatorStack, ensure_local_token_key

    roster_file = demo_roster(participant_count)
    os.environ[settings.ROSTER_PATH_ENV] = str(roster_file)
    participants: list[Participant] = load_roster(roster_file)[:participant_count]
    last_day = last_day or date.today() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    ensure_local_token_key()

    upsert_participants(Timescale(settings.timescale_dsn()), participants)
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance, SimulatorStack(participants) as stack:
        os.environ.update(stack.env())
        existing = instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
        apply_to_instance(instance, partition_changes(participants, existing, last_day))
        ids = [p for p in instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
               if p in {q.participant_id for q in participants}]
        for line in enrol_roster(participants, stack.google).lines():
            print(line, file=sys.stderr)

        from wearable_assets.definitions import defs

        job = defs.resolve_job_def("participant_day_job")
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START: f"{first_day}|{ids[0]}", RANGE_END: f"{last_day}|{ids[-1]}"},
            raise_on_error=False,
            run_config=QUIET,
        )
        valid_weeks = set(weekly_partitions.get_partition_keys())
        weeks = sorted({_monday(first_day + timedelta(days=i)).isoformat() for i in range(days)} & valid_weeks)
        cohort = defs.resolve_assets_def(dg.AssetKey("cohort_week"))  # resources already bound
        for week in weeks:
            dg.materialize([cohort], partition_key=week, instance=instance, raise_on_error=False, run_config=QUIET)
    return DemoResult(ids, first_day, last_day, result.run_id, result.success, time.monotonic() - started, weeks)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def table_counts() -> dict[str, int]:
    from wearable_assets.storage.timescale import Timescale

    db = Timescale(settings.timescale_dsn())
    return {t: db.fetch(f"SELECT count(*) FROM wearables.{t}")[0][0] for t in TABLES}  # names are constants


def ingest_outcomes(first_day: date, last_day: date) -> dict[tuple[str, str], int]:
    """Participant-days per (source, status) in the demo window: a run can succeed while some
    participant-days need re-consent or met an API error (recorded, not raised), so say so."""
    from wearable_assets.storage.timescale import Timescale

    rows = Timescale(settings.timescale_dsn()).fetch(
        "SELECT source, status, count(*) FROM wearables.ingest_status WHERE local_date BETWEEN %s AND %s "
        "GROUP BY source, status ORDER BY source, status",
        (first_day, last_day),
    )
    return {(source, status): n for source, status, n in rows}


def lake_counts() -> dict[str, int]:
    """Rows per lake table, read back with DuckDB as an analyst would."""
    import duckdb

    root = Path(settings.lake_url()) / "wearables"
    out: dict[str, int] = {}
    if not root.exists():
        return out
    for table in sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        glob = (root / table / "**" / "*.parquet").as_posix()
        try:
            counted = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()
            out[table] = counted[0] if counted else 0
        except duckdb.IOException:
            continue
    return out
