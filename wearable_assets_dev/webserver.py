"""Drive a local ``dagster dev`` (webserver + daemon) the way the UI does: over GraphQL.

Used by the end-to-end backfill test and the throughput benchmark, and usable from a shell to
launch a participant-day backfill without clicking through the UI::

    python -m wearable_assets_dev.webserver --url http://127.0.0.1:3000 \\
        --assets fitbit/intraday,intraday_hourly --partitions "2026-11-20|P001" "2026-11-20|P002"

``DagsterDev`` starts ``dagster dev`` in its own process group and stops the whole group
(webserver, daemon, code server and any run processes), because ``dagster dev`` started without
a terminal does not reliably pass SIGTERM on to its children.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConflict { message }
  }
}"""

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions error { message }
      runs(limit: 10000) { id status tags { key value } }
    }
    ... on PythonError { message }
  }
}"""

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

RUNS = """
query Runs($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 10000) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
    ... on PythonError { message }
  }
}"""

#: Backfill states after which nothing more will happen.
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "FAILING"}


class GraphQLError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DagsterGraphQL:
    url: str  # http://127.0.0.1:3000
    timeout_s: float = 60.0

    def query(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=self.timeout_s)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"])[:2000])
        return body["data"]

    def launch_backfill(self, partition_names: Sequence[str], asset_keys: Sequence[str], title: str | None = None) -> str:
        """What the UI's "Materialize selected" -> backfill button sends; ``asset_keys`` like ``fitbit/intraday``."""
        params: dict[str, Any] = {
            "partitionNames": list(partition_names),
            "assetSelection": [{"path": key.split("/")} for key in asset_keys],
        }
        if title:
            params["title"] = title
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"backfill not launched: {result}")
        return result["backfillId"]

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        result = self.query(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"backfill {backfill_id}: {result}")
        return result

    def location_name(self) -> str:
        data = self.query("{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
        (entry,) = data["workspaceOrError"]["locationEntries"]
        return entry["name"]

    def launch_run(self, job_name: str, tags: Mapping[str, str]) -> str:
        """Queue one run of ``job_name`` (the UI's Launchpad; partitions go in as tags)."""
        params = {
            "selector": {"repositoryLocationName": self.location_name(), "repositoryName": "__repository__",
                         "jobName": job_name},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            "runConfigData": {},
        }
        result = self.query(LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"run not launched: {result}")
        return result["run"]["runId"]

    def runs(self, tags: Mapping[str, str] | None = None, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Runs carrying all of ``tags`` (and in one of ``statuses``), with status and
        creation/start/end times (epoch seconds)."""
        flt: dict[str, Any] = {}
        if tags:
            flt["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            flt["statuses"] = list(statuses)
        return self.query(RUNS, {"filter": flt})["runsOrError"]["results"]

    def wait_for_backfill(self, backfill_id: str, timeout_s: float, poll_s: float = 1.0) -> dict[str, Any]:
        """Poll until the backfill and all its runs are finished; returns the last status."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.backfill(backfill_id)
            runs_done = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in state["runs"])
            if state["status"] in FINISHED and runs_done:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {state['status']} after {timeout_s:.0f} s: "
                                   f"{[(r['id'][:8], r['status']) for r in state['runs']]}")
            time.sleep(poll_s)


def process_group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (read from /proc; Linux)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            members.append(int(entry.name))
    return members


class DagsterDev:
    """``dagster dev -m <module>`` on 127.0.0.1 with its own DAGSTER_HOME, as a context manager.

    ``daemon=False`` starts only ``dagster-webserver`` (no schedules, sensors or run queue), for
    measuring what the UI alone costs.
    """

    def __init__(self, dagster_home: Path, env: Mapping[str, str], *, module: str = "wearable_assets.definitions",
                 port: int | None = None, log_path: Path | None = None, daemon: bool = True) -> None:
        self.dagster_home = dagster_home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = DagsterGraphQL(self.url)
        self.log_path = log_path or dagster_home / "dagster_dev.log"
        self._env = {**os.environ, **env, "DAGSTER_HOME": str(dagster_home)}
        self._module = module
        self._daemon = daemon
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 120.0) -> DagsterDev:
        bin_dir = Path(sys.executable).parent
        command = [str(bin_dir / "dagster"), "dev"] if self._daemon else [str(bin_dir / "dagster-webserver")]
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [*command, "-m", self._module, "-h", "127.0.0.1", "-p", str(self.port)],
            env=self._env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches every child
        )
        log.close()
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self._proc.returncode}; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok and self._location_loaded():
                    return self
            except (requests.RequestException, GraphQLError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"dagster dev not ready after {ready_timeout_s:.0f} s; see {self.log_path}")

    def _location_loaded(self) -> bool:
        data = self.client.query("{ workspaceOrError { ... on Workspace { locationEntries { "
                                 "loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }")
        entries = data["workspaceOrError"]["locationEntries"]
        if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
            return False
        errors = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
        if errors:
            raise RuntimeError(f"code location failed to load: {errors[0]['message'][:1000]}")
        return True

    def stop(self, grace_s: float = 10.0) -> None:
        if self._proc is None:
            return
        pgid = self._proc.pid  # the session leader's pid is the group id
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if not process_group_members(pgid):
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and process_group_members(pgid):
                time.sleep(0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        left = process_group_members(pgid)
        self._proc = None
        if left:
            raise RuntimeError(f"dagster dev processes still running after SIGKILL: {left}")

    @property
    def pgid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Launch a partition backfill through a running Dagster webserver.")
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--assets", required=True, help="comma-separated asset keys, e.g. fitbit/intraday,intraday_hourly")
    parser.add_argument("--partitions", nargs="+", required=True, help='keys like "2026-11-20|P001"')
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the backfill to finish")
    args = parser.parse_args(argv)
    client = DagsterGraphQL(args.url)
    backfill_id = client.launch_backfill(args.partitions, args.assets.split(","))
    print(f"backfill {backfill_id}: {args.url}/runs/b/{backfill_id}")
    if args.wait:
        state = client.wait_for_backfill(backfill_id, args.wait)
        print(f"{state['status']}: {len(state['runs'])} runs, "
              f"{sum(r['status'] == 'SUCCESS' for r in state['runs'])} succeeded")
        return 0 if state["status"] in ("COMPLETED", "COMPLETED_SUCCESS") else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
