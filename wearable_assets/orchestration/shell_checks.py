"""One-line answers for ``dagster asset materialize`` started from a shell without what it needs.

Dagster's CLI creates its instance *before* it loads the code location: with ``DAGSTER_HOME``
unset or empty it silently uses a temporary instance, which has no ``participants`` partitions,
and then fails with a 40-line traceback saying the partition key is not in the partitions
definition. The real cause (no instance, or an instance the roster was never synced into) is
not in it. Loading the code location is the first point where project code runs, so
``definitions.py`` calls ``refuse_unusable_materialize`` there: it recognises the Dagster CLI's
``asset materialize`` from ``sys.argv`` (nothing else is affected: ``dagster dev``, ``definitions
validate``, run workers and tests load the code location unchanged) and exits with one line
and the fix.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

FIX_HOME = (
    "export DAGSTER_HOME=<folder with this repo's dagster.yaml> (the project's: "
    "DAGSTER_HOME=$PWD/.state/dagster_home, created by `make dagster-home`), "
    "then `wearable-assets roster sync`"
)


def _is_dagster_materialize(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    program = Path(argv[0])
    if program.name != "dagster" and not (program.name == "__main__.py" and program.parent.name == "dagster"):
        return False
    words = [a for a in argv[1:] if not a.startswith("-")]
    return words[:2] == ["asset", "materialize"]


def _partition_option(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--partition" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--partition="):
            return arg.split("=", 1)[1]
    return None


def materialize_problem(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The one-line problem with this ``dagster asset materialize`` invocation, or None."""
    if not _is_dagster_materialize(argv):
        return None
    home = environ.get("DAGSTER_HOME", "").strip()
    if not home:
        return (
            "DAGSTER_HOME is not set, so Dagster would use a temporary instance without the "
            f"participants partitions: {FIX_HOME}"
        )
    if not Path(home).is_dir():
        return f"DAGSTER_HOME={home} is not a folder: {FIX_HOME}"
    key = _partition_option(argv)
    if key is None or "|" not in key:
        return None
    participant_id = key.split("|", 1)[1]
    import dagster as dg

    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME

    with dg.DagsterInstance.get() as instance:
        known = instance.has_dynamic_partition(PARTICIPANTS_PARTITION_NAME, participant_id)
    if not known:
        return (
            f"participant {participant_id!r} is not in the '{PARTICIPANTS_PARTITION_NAME}' partitions of "
            f"DAGSTER_HOME={home}: run `wearable-assets roster sync` with this DAGSTER_HOME "
            "(and check the participant is in the roster)"
        )
    return None


def refuse_unusable_materialize(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Exit 2 with one line on stderr when ``materialize_problem`` finds one."""
    problem = materialize_problem(sys.argv if argv is None else argv, os.environ if environ is None else environ)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
