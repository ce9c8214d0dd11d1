"""A participant-day backfill launched the way the UI's button does it: ``dagster dev`` (webserver
and daemon) on 127.0.0.1 with a throw-away DAGSTER_HOME, ``launchPartitionBackfill`` over GraphQL,
then the rows in TimescaleDB. Slow by nature (~1.5 min): it is the one test of the real daemon."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from wearable_assets import settings
from wearable_assets.orchestration.pools import apply_pool_limits
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.stack import SimulatorStack
from wearable_assets_dev.webserver import DagsterDev, process_group_members
from wearable_assets_tests.orchestration.conftest import synced_day

ASSETS = [
    "fitbit/raw_payloads", "fitbit/intraday", "fitbit/intraday_parquet",
    "actigraph/daily_statistics_parquet", "actigraph/daily_statistics",
    "intraday_hourly", "participant_day_summary",
]


def test_backfill_through_the_webserver_lands_rows(
    stack: SimulatorStack, timescale: TimescaleResource, lake: LakeResource, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv(settings.SCHEDULE_CRON_ENV, "0 3 1 1 *")  # the daily schedule must not fire mid-test
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ["P001", "P002", "P003", "P004", "P005"])
        apply_pool_limits(instance)
    day = synced_day()
    keys = [f"{day}|P001", f"{day}|P002"]

    with DagsterDev(home, env={}) as dev:
        backfill_id = dev.client.launch_backfill(keys, ASSETS, title="test: two participant-days")
        state = dev.client.wait_for_backfill(backfill_id, timeout_s=400)
        pgid = dev.pgid

    assert state["status"] == "COMPLETED_SUCCESS", (state, (home / "dagster_dev.log").read_text()[-3000:])
    assert state["numPartitions"] == 2
    assert state["runs"] and all(run["status"] == "SUCCESS" for run in state["runs"])
    for run in state["runs"]:
        assert {"key": "dagster/backfill", "value": backfill_id} in run["tags"]
    assert pgid is not None and process_group_members(pgid) == []  # webserver, daemon, code server all gone

    per_table = {
        table: dict(timescale.fetch(
            f"SELECT participant_id, count(*) FROM wearables.{table} WHERE {column} = %s GROUP BY 1", (day,)))
        for table, column in (("ingest_status", "local_date"), ("actigraph_daily_statistics", "local_date"),
                              ("intraday_hourly", "local_date"), ("participant_day_summary", "local_date"))
    }
    for table, rows in per_table.items():
        assert set(rows) == {"P001", "P002"}, (table, rows)
    assert timescale.fetch(
        "SELECT count(*) FROM wearables.fitbit_intraday f JOIN wearables.participants p USING (participant_id) "
        "WHERE (f.ts AT TIME ZONE p.time_zone)::date = %s", (day,))[0][0] > 10_000
