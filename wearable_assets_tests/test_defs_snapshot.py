"""The asset graph as a committed snapshot: any change to it shows up as a reviewed diff.

The rendering (``defs_snapshot.render``) covers asset keys, groups, kinds, partitions, backfill
and retry policies, deps, owners, automation, pools, asset checks, schedules, sensors, jobs and
resource keys. An intended change is recorded with

    WEARABLES_UPDATE_SNAPSHOTS=1 pytest wearable_assets_tests/test_defs_snapshot.py

and the rewritten ``snapshots/asset_graph.json`` is committed with the change that caused it.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from wearable_assets import settings
from wearable_assets_tests import defs_snapshot

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"
UPDATE_ENV = "WEARABLES_UPDATE_SNAPSHOTS"
#: Prefixes of variables that change what the code location loads (partition start, schedule
#: cron, optional resources); the snapshot is of the defaults, whatever the caller's shell holds.
_PROJECT_PREFIXES = ("WEARABLES_", "GOOGLE_", "FITBIT_", "CENTREPOINT_", "CENTERPOINT_", "SOURCES__", "DAGSTER_", "AWS_")


def _render_in_clean_environment(tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PROJECT_PREFIXES)}
    env["DAGSTER_HOME"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.REPO_ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "wearable_assets_tests.defs_snapshot"],
        env=env, cwd=settings.REPO_ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_asset_graph_matches_snapshot(tmp_path: Path) -> None:
    rendered = _render_in_clean_environment(tmp_path)
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_ENV}=1 and commit {SNAPSHOT.name}"
    expected = SNAPSHOT.read_text()
    if rendered != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), rendered.splitlines(keepends=True),
            fromfile=f"snapshots/{SNAPSHOT.name} (committed)", tofile="asset graph (loaded now)",
        ))
        pytest.fail(
            f"the asset graph changed; if intended, rerun with {UPDATE_ENV}=1 and commit the snapshot:\n{diff}",
            pytrace=False,
        )


def test_rendering_notices_what_the_snapshot_guards() -> None:
    """A retry policy, a blocking flag or a dependency that changes must change the rendering."""

    @dg.asset(group_name="g", kinds={"timescaledb"})
    def upstream() -> None: ...

    def build(retry: dg.RetryPolicy | None, blocking: bool, with_dep: bool) -> str:
        @dg.asset(name="downstream", deps=[upstream] if with_dep else [], retry_policy=retry)
        def downstream() -> None: ...

        @dg.asset_check(asset=downstream, blocking=blocking)
        def sane() -> dg.AssetCheckResult:
            return dg.AssetCheckResult(passed=True)

        return defs_snapshot.dumps(defs_snapshot.render(dg.Definitions(assets=[upstream, downstream], asset_checks=[sane])))

    base = build(None, False, True)
    assert base == build(None, False, True)  # stable: same graph, same text
    assert '"retry_policy": null' in base
    with_retry = build(dg.RetryPolicy(max_retries=3, delay=5), False, True)
    assert '"max_retries": 3' in with_retry and with_retry != base
    assert '"blocking": true' in build(None, True, True)
    assert '"upstream"' not in build(None, False, False).split('"downstream"', 1)[1].split("}", 1)[0]
