"""``python -m wearable_assets_dev``: the development command line (simulators, demo), run from the checkout.

These commands start simulated providers, so they belong to the checkout, not to the installed
``wearable-assets`` (which never imports this package). The group sets up what the runtime CLI
does (logging, the local ``DAGSTER_HOME`` default) and reports operator errors the same way
(``operator_errors.run_cli``). ``make demo``, ``make dev`` and ``make ci-smoke`` call it.
"""

from __future__ import annotations

import sys

import click

from wearable_assets import settings
from wearable_assets.cli import prepare

PROG_NAME = "python -m wearable_assets_dev"


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Development tooling of wearable_assets: provider simulators and the demo (see README.md)."""
    prepare(verbose)


@cli.group()
def simulators() -> None:
    """Loopback simulators of the provider APIs (for the demo, `make dev` and CI)."""


@simulators.command("exec", context_settings={"ignore_unknown_options": True})
@click.option("--enroll/--no-enroll", default=True, show_default=True,
              help="Enrol the roster's Google Health participants that have no usable token through the "
                   "simulator's consent page first (stored tokens are kept; participants who need re-consent "
                   "are never touched).")
@click.option("--fitbit-mode", type=click.Choice(["gone", "working"]), default="gone", show_default=True,
              help="Legacy Fitbit API behaviour: 'gone' answers 410 as the real one does since 2026-11-02.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def simulators_exec(enroll: bool, fitbit_mode: str, command: tuple[str, ...]) -> None:
    """Start every simulator, run COMMAND with the environment pointing at them, stop them.

    SIGTERM and SIGINT are passed on to COMMAND, and the simulators stop only after it exits.
    Example: python -m wearable_assets_dev simulators exec -- dagster asset materialize -m wearable_assets.definitions ...
    """
    import os

    from wearable_assets.roster import load_roster
    from wearable_assets_dev.simulators.enrolment import enrol_roster
    from wearable_assets_dev.simulators.stack import SimulatorStack, ensure_local_token_key, run_forwarding_signals

    ensure_local_token_key()
    participants = load_roster(settings.roster_path())
    with SimulatorStack(participants, fitbit_mode=fitbit_mode) as stack:
        os.environ.update(stack.env())
        if enroll:
            for line in enrol_roster(participants, stack.google).lines():
                click.echo(line, err=True)
        code = run_forwarding_signals(list(command))
    sys.exit(code)


@cli.command()
@click.option("--participants", "participant_count", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Demo cohort size (beyond the 5 shipped participants a roster is generated).")
@click.option("--days", type=click.IntRange(1, 366), default=3, show_default=True, help="Days ending yesterday.")
@click.option("--last-day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Last day (default yesterday).")
def demo(participant_count: int, days: int, last_day: object) -> None:
    """Run the main job on the demo cohort against the simulators and print a summary."""
    import warnings

    import dagster as dg

    from wearable_assets_dev.demo import ingest_outcomes, lake_counts, run_demo, table_counts

    # Dagster flags features the project uses on purpose (backfill policies, partitioned checks)
    # as beta/preview, once per definition; the demo's reader needs the summary, not those.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message=".*varying BackfillPolicies", category=UserWarning)
    result = run_demo(participant_count, days, last_day.date() if last_day else None)  # type: ignore[attr-defined]
    pdays = len(result.participants) * days
    click.echo("")
    click.echo("== wearable_assets demo ==")
    click.echo(f"participant_day_job run {result.run_id}: {'SUCCESS' if result.success else 'FAILED'} "
               f"in {result.seconds:.0f} s")
    click.echo(f"materialised {pdays} participant-days: {', '.join(result.participants)} x "
               f"{result.first_day}..{result.last_day}; cohort_week: {', '.join(result.weeks) or '-'}")
    outcomes = ingest_outcomes(result.first_day, result.last_day)
    click.echo("ingest outcomes (participant-days): " + ("; ".join(
        f"{source} {status} {n}" for (source, status), n in outcomes.items()) or "none recorded"))
    troubled = {key: n for key, n in outcomes.items() if key[1] not in ("ok", "no_data")}
    if troubled:
        click.echo("  some participant-days did not load: see wearables.ingest_status.detail for the fix", err=True)
    click.echo("TimescaleDB rows:")
    for table, n in table_counts().items():
        click.echo(f"  wearables.{table:<28} {n:>10,}")
    click.echo("lake rows (parquet, read with DuckDB):")
    for table, n in lake_counts().items():
        click.echo(f"  {table:<38} {n:>10,}")
    click.echo(f"TimescaleDB DSN: {settings.mask_dsn(settings.timescale_dsn())}")
    click.echo(f"lake folder:     {settings.lake_url()}")
    click.echo(f"Dagster UI:      make dev, then open http://127.0.0.1:3000 (DAGSTER_HOME={settings.dagster_home()})")
    click.echo("read API:        make serve, then open http://127.0.0.1:8000")
    if not result.success:
        raise click.ClickException("the demo run failed: open the run in the Dagster UI (make dev) for the step logs")


def main() -> None:
    """Run the development CLI with the runtime CLI's handling of operator errors."""
    from wearable_assets.operator_errors import run_cli

    run_cli(cli, prog_name=PROG_NAME)
