"""Each participant-day's own outcome, recorded on its own partition even inside a ranged run.

Why this module exists: a ranged run (backfill, schedule) materialises many participant-days in
one step, and Dagster then gives every partition of the range the *run's* materialisation, with
the run's metadata (docs/orchestration.md, "What a partition shows"). A study team acts on the
participant-day, so each asset reports through ``report``, which yields, in this order:

1. one ``MaterializeResult`` without metadata (Dagster needs it for the asset's output, so the
   downstream assets of the same run still run);
2. per participant-day, an ``AssetMaterialization`` for that partition with its own status,
   detail and ``dagster/row_count``: it is the partition's latest materialisation, so the UI,
   ``dagster/row_count`` and plots by partition show the participant-day's own numbers;
3. per participant-day, an ``AssetCheckEvaluation`` of the asset's ``participant_day_outcome``
   check for that partition (passed only for ``ok``; WARN for no_data / skipped / implausible,
   ERROR for needs_reconsent / api_error), so a participant-day that was not ingested is
   visibly not green, one result per participant-day.

A failed participant-day never raises: the others of its run are loaded and rolled up, and the
failed one is retried by the schedule's re-pull window or by re-running just its partition
(docs/orchestration.md). Dagster 1.13 marks a partition failed only when its whole step
fails, which would fail every other participant-day of the range too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

#: What can happen to a participant-day in one asset.
STATUSES = ("ok", "no_data", "skipped", "implausible", "needs_reconsent", "api_error")
#: Severity of the outcome check for each status that is not ``ok``: a person must act on the
#: ERROR ones (re-consent, a provider or pipeline failure); the WARN ones are facts about the
#: participant (no device of that kind, not enrolled, not synced, values quarantined).
SEVERITY = {
    "no_data": dg.AssetCheckSeverity.WARN,
    "skipped": dg.AssetCheckSeverity.WARN,
    "implausible": dg.AssetCheckSeverity.WARN,
    "needs_reconsent": dg.AssetCheckSeverity.ERROR,
    "api_error": dg.AssetCheckSeverity.ERROR,
}
OUTCOME_CHECK = "participant_day_outcome"
ROW_COUNT = "dagster/row_count"


@dataclass
class PartitionOutcome:
    """One participant-day's result in one asset: what the partition shows."""

    key: str
    status: str
    detail: str = ""
    rows: int | None = None
    #: Further per-participant-day numbers (floats and ints plot across partitions in the UI).
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown participant-day status {self.status!r} (one of {', '.join(STATUSES)})")

    def as_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.detail:
            out["detail"] = self.detail[:2000]
        if self.rows is not None:
            out[ROW_COUNT] = int(self.rows)
        out.update({k: v for k, v in self.metadata.items() if v is not None})
        return out


def outcome_check_spec(asset_key: dg.AssetKey | Sequence[str], what: str) -> dg.AssetCheckSpec:
    """The per-participant-day outcome check of a participant-day asset (``what``: fetched/loaded)."""
    from wearable_assets.partitions import participant_day_partitions

    return dg.AssetCheckSpec(
        OUTCOME_CHECK,
        asset=dg.AssetKey(list(asset_key)) if not isinstance(asset_key, dg.AssetKey) else asset_key,
        partitions_def=participant_day_partitions,
        blocking=False,
        description=f"Whether this participant-day was {what}: passes only for `ok`; warns for no data, "
        "skipped (no device of that kind, not enrolled) and quarantined values; fails for re-consent "
        "needed and provider/pipeline errors. One result per participant-day, also in ranged runs.",
    )


def status_counts(outcomes: Iterable[PartitionOutcome]) -> dict[str, int]:
    return dict(sorted(Counter(o.status for o in outcomes).items()))


def check_evaluation(asset_key: dg.AssetKey, check_name: str, key: str, passed: bool,
                     severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
                     metadata: Mapping[str, Any] | None = None, description: str | None = None) -> AssetCheckEvaluation:
    """A check result for one participant-day partition (``AssetCheckResult`` has no partition)."""
    return AssetCheckEvaluation(asset_key=asset_key, check_name=check_name, passed=passed, severity=severity,
                                metadata=dict(metadata or {}), description=description, partition=key)


def check_output(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
                 check_key: dg.AssetCheckKey | None = None) -> dg.Output:
    """The ``Output`` a check's step must emit when its results are yielded as per-partition
    evaluations (Dagster otherwise fails the step: "did not return an output")."""
    if isinstance(context, dg.AssetCheckExecutionContext):
        return dg.Output(None, output_name="result")
    assert check_key is not None
    name = context.assets_def.get_output_name_for_asset_check_key(check_key)
    return dg.Output(None, output_name=name)


def report(context: dg.AssetExecutionContext, outcomes: Sequence[PartitionOutcome],
           *, check: bool = True) -> Iterator[Any]:
    """Yield the events that record each participant-day on its own partition (module docstring).

    ``outcomes`` must cover every partition key of the run; ``check``: the asset declares
    ``outcome_check_spec``. The run's summary goes to the run log, never to the partitions.
    """
    asset_key = context.asset_key
    keys = {str(k) for k in context.partition_keys}
    missing = keys - {o.key for o in outcomes}
    if missing:
        raise RuntimeError(f"{asset_key.to_user_string()}: no outcome for {sorted(missing)[:5]}")
    context.log.info("%s: %d participant-day(s): %s", asset_key.to_user_string(), len(outcomes),
                     ", ".join(f"{n} {s}" for s, n in status_counts(outcomes).items()))
    yield dg.MaterializeResult()
    check_key = dg.AssetCheckKey(asset_key, OUTCOME_CHECK)
    for outcome in sorted(outcomes, key=lambda o: o.key):
        metadata = outcome.as_metadata()
        yield dg.AssetMaterialization(asset_key=asset_key, partition=outcome.key, metadata=metadata)
        if check:
            passed = outcome.status == "ok"
            yield check_evaluation(asset_key, OUTCOME_CHECK, outcome.key, passed,
                                   SEVERITY.get(outcome.status, dg.AssetCheckSeverity.ERROR),
                                   {k: v for k, v in metadata.items() if k != ROW_COUNT},
                                   description=None if passed else f"{outcome.status}: {outcome.detail}"[:500])
    if check:
        yield check_output(context, check_key)


def report_checks(context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, check_name: str,
                  results: Mapping[str, tuple[bool, Mapping[str, Any]]],
                  severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> Iterator[Any]:
    """Yield one evaluation per participant-day of a check's run: ``results[key] = (passed, metadata)``."""
    for key in sorted(results):
        passed, metadata = results[key]
        yield check_evaluation(asset_key, check_name, key, passed, severity, metadata)
    yield check_output(context)
