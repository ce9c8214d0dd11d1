"""dagster.yaml as shipped: queued runs, concurrency, pools, and the documented Postgres storage."""

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from wearable_assets import settings
from wearable_assets.orchestration.pools import POOL_LIMITS, apply_pool_limits
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
from wearable_assets.storage.local_server import temporary_database

TEMPLATE = settings.REPO_ROOT / "dagster.yaml"


def home_with(tmp_path: Path, text: str) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    return home


def test_template_configures_the_run_queue_and_pools(tmp_path: Path) -> None:
    home = home_with(tmp_path, TEMPLATE.read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config is not None
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.run_queue_config.tag_concurrency_limits == [{"key": "dagster/backfill", "limit": 3}]
        assert concurrency.pool_config.default_pool_limit == 2
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"  # the default: nothing to set up


def test_pool_limits_are_applied_once_and_operator_changes_kept(instance: dg.DagsterInstance) -> None:
    assert apply_pool_limits(instance) == POOL_LIMITS
    storage = instance.event_log_storage
    assert storage.get_concurrency_info("google_health_api").slot_count == 4
    assert storage.get_concurrency_info("centrepoint_api").slot_count == 1

    storage.set_concurrency_slots("google_health_api", 6)  # an operator raised it in the UI
    assert apply_pool_limits(instance) == {}
    assert storage.get_concurrency_info("google_health_api").slot_count == 6
    assert apply_pool_limits(instance, overwrite=True) == POOL_LIMITS
    assert storage.get_concurrency_info("google_health_api").slot_count == 4


def documented_postgres_block(text: str) -> str:
    """The commented storage block between the markers, uncommented exactly as a user would."""
    match = re.search(r"# >>> postgres storage\n(.*?)# <<< postgres storage", text, re.S)
    assert match, "dagster.yaml lost its postgres storage markers"
    return "\n".join(line.removeprefix("# ") for line in match.group(1).splitlines()) + "\n"


@pytest.fixture
def dagster_database(timescale_dsn: str) -> Iterator[str]:
    """A fresh ``dagster_test_<pid>`` database on the project's TimescaleDB server, as a
    SQLAlchemy URL with the psycopg2 driver (what the template asks for)."""
    name = f"dagster_test_{os.getpid()}"
    info = psycopg.conninfo.conninfo_to_dict(timescale_dsn)
    password = f":{info['password']}" if info.get("password") else ""
    with temporary_database(timescale_dsn, name):
        yield f"postgresql+psycopg2://{info['user']}{password}@{info['host']}:{info.get('port', 5432)}/{name}"


@dg.asset(partitions_def=dg.DynamicPartitionsDefinition(name=PARTICIPANTS_PARTITION_NAME))
def storage_probe() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"ok": True})


def test_documented_postgres_storage_works(
    tmp_path: Path, dagster_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TEMPLATE.read_text()
    home = home_with(tmp_path, text + "\n" + documented_postgres_block(text))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_database)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PooledPostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PooledPostgresScheduleStorage"
        instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ["P001", "P002"])
        result = dg.materialize([storage_probe], partition_key="P002", instance=instance)
        assert result.success
        apply_pool_limits(instance)

    with psycopg.connect(dagster_database.replace("postgresql+psycopg2://", "postgresql://")) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'").fetchone() == (1,)
        assert conn.execute("SELECT partition FROM dynamic_partitions ORDER BY id").fetchall() == [("P001",), ("P002",)]
        assert conn.execute("SELECT \"limit\" FROM concurrency_limits WHERE concurrency_key = 'centrepoint_api'"
                            ).fetchone() == (1,)
    assert not list(home.glob("**/*.db")), "sqlite files written although Postgres storage is configured"


def _terminate_sessions(dsn: str, database: str) -> int:
    """Ends every session of ``database`` but this one (as a server restart would)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", [database]).fetchall()
    return len(rows)


def test_pooled_storage_replaces_sessions_the_server_dropped(
    tmp_path: Path, dagster_database: str, timescale_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions are kept between statements and only pinged after being idle: a session the server
    ended while it sat in the pool is replaced on checkout, never handed to Dagster dead."""
    from wearable_assets.orchestration import instance_storage

    monkeypatch.setattr(instance_storage, "PING_AFTER_IDLE_S", 0.2)
    text = TEMPLATE.read_text()
    home = home_with(tmp_path, text + "\n" + documented_postgres_block(text))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_database)
    database = dagster_database.rsplit("/", 1)[1]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ["P001"])
        for round_ in range(10):
            assert _terminate_sessions(timescale_dsn, database) >= 1  # the pool kept its sessions
            time.sleep(0.3)
            instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, [f"P{round_ + 2:03d}"])
            assert dg.materialize([storage_probe], partition_key="P001", instance=instance).success
        assert instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME) == [f"P{n:03d}" for n in range(1, 12)]
        assert len(instance.get_runs()) == 10
