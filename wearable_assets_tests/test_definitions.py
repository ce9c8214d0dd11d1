"""The code location loads with no secrets set, as `dagster definitions validate` does in CI."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

import wearable_assets.definitions as definitions_module
from wearable_assets import settings


def test_definitions_load_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEARABLES_TIMESCALE_DSN", "GOOGLE_CLIENT_SECRET", "FITBIT_CLIENT_SECRET",
                 "CENTREPOINT_CLIENT_SECRET", "WEARABLES_TOKEN_KEY"):
        monkeypatch.delenv(name, raising=False)
    defs = importlib.reload(definitions_module).defs
    defs.resolve_all_job_defs()
    repo = defs.get_repository_def()
    assert "roster_sensor" in {s.name for s in repo.sensor_defs}
    assert {"timescale", "lake"} <= set(defs.resources or {})


#: Every secret the code location or its resources read (settings.py, resources, dlt's lookup for
#: CentrePoint, the older pipeline's aliases), plus DSNs, which may carry a password.
SECRET_VARIABLES = (
    "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "FITBIT_CLIENT_ID", "FITBIT_CLIENT_SECRET",
    "CENTREPOINT_CLIENT_ID", "CENTREPOINT_CLIENT_SECRET", "CENTERPOINT_USERNAME", "CENTERPOINT_PASSWORD",
    "WEARABLES_TOKEN_KEY", "WEARABLES_TIMESCALE_DSN", "WEARABLES_API_DSN", "WEARABLES_ATHENA_RESULTS",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)


def _environment_without_secrets(dagster_home: Path) -> dict[str, str]:
    env = {
        name: value for name, value in os.environ.items()
        if name not in SECRET_VARIABLES
        and not name.startswith("SOURCES__")  # dlt's own spelling of the CentrePoint credentials
        and not any(word in name for word in ("SECRET", "PASSWORD", "TOKEN"))
    }
    env["DAGSTER_HOME"] = str(dagster_home)
    return env


def _validate(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.run(
        [str(dagster), "definitions", "validate", "-m", module],
        env=env, cwd=settings.REPO_ROOT, capture_output=True, text=True, timeout=180,
    )


def test_dagster_cli_validates_definitions_without_secrets(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = _environment_without_secrets(home)
    assert not set(SECRET_VARIABLES) & set(env)
    result = _validate("wearable_assets.definitions", env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation successful for code location wearable_assets.definitions" in output
    # The exit status is meaningful: a code location that cannot load fails the same command.
    broken = _validate("wearable_assets.no_such_definitions", env)
    assert broken.returncode != 0


def test_every_asset_has_an_owner_and_a_plain_description() -> None:
    """The UI shows owners and descriptions as they are: no reStructuredText or Markdown markup,
    and the graph starts at the external sources the data comes from."""
    from wearable_assets.external import OWNERS

    graph = definitions_module.defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"external/google_health_api", "external/fitbit_web_api", "external/centrepoint_api",
            "external/roster"} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == OWNERS, key
        description = node.description or ""
        assert description.strip(), f"{key.to_user_string()} has no description"
        assert not any(mark in description for mark in ("``", "**", ":func:", ":class:")), key
    raw = graph.get(dg.AssetKey(["fitbit", "raw_payloads"]))
    assert {p.to_user_string() for p in raw.parent_keys} == {
        "external/google_health_api", "external/fitbit_web_api", "external/roster"}
