"""Run a selection of the project's real definitions in-process, as Dagster would in a run."""

import dagster as dg

from wearable_assets.definitions import defs
from wearable_assets.orchestration.schedules import RANGE_END, RANGE_START

PARTITION_TAG = "dagster/partition"


def execute(
    selection: dg.AssetSelection,
    instance: dg.DagsterInstance,
    *,
    partition_key: str | None = None,
    partition_range: tuple[str, str] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.ExecuteInProcessResult:
    """One run of ``selection`` with the resources of ``wearable_assets.definitions`` (which read
    the test database and lake from the environment the fixtures set). A selection of checks
    only needs ``partitions_def``: Dagster infers it from assets."""
    job = dg.define_asset_job("under_test", selection=selection, partitions_def=partitions_def)
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("under_test")
    # The partition goes in as a tag (what the daemon does) because ``partition_key=`` is validated
    # against the selected *assets*, and a checks-only selection has none.
    tags = {RANGE_START: partition_range[0], RANGE_END: partition_range[1]} if partition_range else {}
    if partition_key is not None:
        tags[PARTITION_TAG] = partition_key
    return job_def.execute_in_process(instance=instance, tags=tags, raise_on_error=False)


def materialized_keys(result: dg.ExecuteInProcessResult, asset: str) -> list[str]:
    """The partitions the run materialised (each has Dagster's event and its own, see outcomes.py)."""
    return sorted({
        str(e.event_specific_data.materialization.partition)  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == dg.AssetKey.from_user_string(asset)
    })


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        e.event_specific_data.error.message  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
