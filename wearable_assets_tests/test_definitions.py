"""The code location loads with no secrets set, as `dagster definitions validate` does in CI."""

import importlib

import pytest

import wearable_assets.definitions as definitions_module


def test_definitions_load_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEARABLES_TIMESCALE_DSN", "GOOGLE_CLIENT_SECRET", "FITBIT_CLIENT_SECRET",
                 "CENTREPOINT_CLIENT_SECRET", "WEARABLES_TOKEN_KEY"):
        monkeypatch.delenv(name, raising=False)
    defs = importlib.reload(definitions_module).defs
    defs.resolve_all_job_defs()
    repo = defs.get_repository_def()
    assert "roster_sensor" in {s.name for s in repo.sensor_defs}
    assert {"timescale", "lake"} <= set(defs.resources or {})
