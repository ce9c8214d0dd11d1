"""Run the project's commands as an operator's plain shell would: a subprocess whose environment
holds none of the project's variables unless the test gives them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from wearable_assets import settings

BIN = Path(sys.executable).parent
#: Variables of the project, the providers, dlt, AWS and Dagster: none leaks from the test runner.
PROJECT_PREFIXES = ("WEARABLES_", "GOOGLE_", "FITBIT_", "CENTREPOINT_", "CENTERPOINT_", "SOURCES__", "DAGSTER_", "AWS_")


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_PREFIXES)}
    # The code under test, not whatever copy the venv was installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.update(extra)
    return env


def run(args: Sequence[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), env=env, cwd=settings.REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def wearable_assets(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "wearable-assets"), *args], env, timeout)


#: The development CLI (simulators, demo) as the Makefile runs it: from the checkout, not installed.
DEV_CLI = [str(BIN / "python"), "-m", "wearable_assets_dev"]


def wearable_assets_dev(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run([*DEV_CLI, *args], env, timeout)
