"""dagster.yaml's documented AWS block (S3 compute logs, one ECS task per run), loaded exactly as
written, against a moto server on 127.0.0.1 (S3 and ECS).

What this proves: the block is valid instance config for the pinned dagster-aws; the ECS run
launcher resolves its task definition and container and carries the documented environment and
secrets; a real run's step output lands in the S3 bucket and is read back from there. What it
cannot prove: that ECS starts the task (moto records RunTask, it runs nothing), the IAM policies,
or that Secrets Manager injects the secrets (docs/orchestration.md, "Scaling out").
"""

import re
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
import requests
import yaml
from dagster._core.storage.compute_log_manager import ComputeIOType
from dagster._core.utils import parse_env_var
from moto.server import ThreadedMotoServer

from wearable_assets import settings

TEMPLATE = settings.REPO_ROOT / "dagster.yaml"
REGION = "us-east-1"
BUCKET = "wearables-compute-logs"


def documented_aws_block(text: str) -> dict[str, Any]:
    """The commented AWS block between the markers, uncommented exactly as a user would."""
    match = re.search(r"# >>> aws instance\n(.*?)# <<< aws instance", text, re.S)
    assert match, "dagster.yaml lost its aws instance markers"
    block = "\n".join(line.removeprefix("# ") for line in match.group(1).splitlines()) + "\n"
    loaded = yaml.safe_load(block)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto (S3 + ECS) on 127.0.0.1 with dummy keys; boto clients reach it through AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url
    finally:
        server.stop()


@dg.asset
def compute_log_probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    marker = context.run.tags["probe"]
    print(f"stdout of the probe {marker}")
    print(f"stderr of the probe {marker}", file=sys.stderr)
    return dg.MaterializeResult(metadata={"marker": marker})


def test_documented_aws_block_ships_compute_logs_to_s3_and_configures_ecs(
    tmp_path: Path, moto_aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TEMPLATE.read_text()
    block = documented_aws_block(text)
    assert block["compute_logs"]["class"] == "S3ComputeLogManager"
    assert block["run_launcher"]["class"] == "EcsRunLauncher"
    config = yaml.safe_load(text) | block
    # The one addition: where "S3" is. On AWS the endpoint is the default, so the block has none.
    config["compute_logs"]["config"]["endpoint_url"] = moto_aws
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.register_task_definition(family="wearables-run", containerDefinitions=[
        {"name": "run", "image": "wearables:latest", "memory": 1024}])
    monkeypatch.setenv("WEARABLES_COMPUTE_LOG_BUCKET", BUCKET)
    monkeypatch.setenv("WEARABLES_ECS_TASK_DEFINITION", "wearables-run")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        from dagster_aws.ecs import EcsRunLauncher
        from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

        logs = instance.compute_log_manager
        assert isinstance(logs, S3ComputeLogManager)
        launcher = instance.run_launcher
        assert isinstance(launcher, EcsRunLauncher)
        assert launcher.task_definition.endswith(":task-definition/wearables-run:1")  # resolved in ECS
        assert launcher.container_name == "run" and launcher.secrets_tags == []
        # The run's environment: every documented name resolves from the daemon's environment...
        for name in launcher.env_vars:
            monkeypatch.setenv(name, f"value-of-{name}")
        assert dict(parse_env_var(v) for v in launcher.env_vars)["WEARABLES_LAKE_DESTINATION"] == \
            "value-of-WEARABLES_LAKE_DESTINATION"
        assert {"WEARABLES_LAKE_DESTINATION", "WEARABLES_LAKE_URL", "WEARABLES_ATHENA_RESULTS",
                "AWS_DEFAULT_REGION"} <= set(launcher.env_vars)
        # ...and the secrets come from the secret store, by reference (no value in the file).
        assert {s["name"] for s in launcher.secrets} == {
            "WEARABLES_TIMESCALE_DSN", "DAGSTER_PG_URL", "WEARABLES_TOKEN_KEY", "GOOGLE_CLIENT_SECRET",
            "FITBIT_CLIENT_SECRET", "CENTREPOINT_CLIENT_SECRET"}
        assert all(s["valueFrom"].startswith("arn:aws:secretsmanager:") for s in launcher.secrets)

        marker = uuid.uuid4().hex
        result = dg.materialize([compute_log_probe], instance=instance, tags={"probe": marker})
        assert result.success

        # The step's output is in the bucket, under the documented prefix...
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert keys and all(k.startswith("dagster-compute-logs/") for k in keys), keys
        bodies = {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode() for k in keys}
        assert any(k.endswith(".out") and f"stdout of the probe {marker}" in b for k, b in bodies.items())
        assert any(k.endswith(".err") and f"stderr of the probe {marker}" in b for k, b in bodies.items())

        # ...and the instance reads it back from S3 (what the UI shows), not from a local file.
        captured = [e for e in instance.all_logs(result.run_id) if e.dagster_event
                    and e.dagster_event.event_type_value == "LOGS_CAPTURED"]
        assert captured
        log_key = [result.run_id, "compute_logs", captured[0].dagster_event.logs_captured_data.file_key]
        assert logs.cloud_storage_has_logs(log_key, ComputeIOType.STDOUT)
        local_copy = Path(logs.local_manager.get_captured_local_path(log_key, "out"))
        local_copy.unlink(missing_ok=True)  # what is read next can only come from the bucket
        data = logs.get_log_data(log_key)
        assert data.stdout is not None and f"stdout of the probe {marker}" in data.stdout.decode()
