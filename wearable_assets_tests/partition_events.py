"""What each participant-day partition ends a run with: its own metadata and check results."""

from __future__ import annotations

from typing import Any

import dagster as dg

from wearable_assets.outcomes import OUTCOME_CHECK


def partition_metadata(result: dg.ExecuteInProcessResult, asset: str | list[str]) -> dict[str, dict[str, Any]]:
    """``{partition: metadata}`` of each partition's latest materialisation in the run (what the
    UI shows for the partition)."""
    key = dg.AssetKey(asset) if isinstance(asset, list) else dg.AssetKey.from_user_string(asset)
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if event.asset_key == key and materialization.partition is not None:
            out[str(materialization.partition)] = {k: v.value for k, v in materialization.metadata.items()}
    return out


def check_results(result: dg.ExecuteInProcessResult, asset: str | list[str],
                  check: str = OUTCOME_CHECK) -> dict[str | None, dg.AssetCheckEvaluation]:
    """``{partition: evaluation}`` of one check in the run."""
    key = dg.AssetKey(asset) if isinstance(asset, list) else dg.AssetKey.from_user_string(asset)
    return {e.partition: e for e in result.get_asset_check_evaluations()
            if e.asset_key == key and e.check_name == check}
