"""``wearable-assets``: the operator's command line (database, roster, enrolment, simulators, demo).

Each domain contributes its own commands (e.g. ``fitbit/cli.py``); this module only groups them.
Every command fills in the local defaults (``resources.ensure_local_environment``) so the same
command works against the project-local stack and, with environment variables set, a real one.
"""

from __future__ import annotations

import logging
import sys
from datetime import date

import click

from wearable_assets import settings
from wearable_assets.resources import ensure_local_environment


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Collect wearable data per participant-day (see README.md)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wearable_assets").setLevel(logging.DEBUG if verbose else logging.INFO)
    ensure_local_environment()


@cli.group()
def db() -> None:
    """TimescaleDB schema."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations from sql/ and report the TimescaleDB licence."""
    from wearable_assets.storage.migrations import MigrationError
    from wearable_assets.storage.timescale import Timescale

    try:
        report = Timescale(settings.timescale_dsn()).migrate()
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"timescaledb.license = {report.license}")
    click.echo(f"applied: {', '.join(report.applied) or 'nothing (up to date)'}")
    for version, reason in report.skipped.items():
        click.echo(f"skipped {version}: {reason}")


@cli.group()
def roster() -> None:
    """Participant roster."""


@roster.command("sync")
@click.option("--roster", "roster_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Roster CSV (default: $WEARABLES_ROSTER or roster/demo_roster.csv).")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Treat this date as today for enrolment windows.")
def roster_sync(roster_file: str | None, today: object) -> None:
    """Write the roster to wearables.participants and the Dagster 'participants' partitions.

    The same work the roster sensor does on its tick, for CI and first set-up (there is no
    Dagster CLI command that adds dynamic partitions).
    """
    import dagster as dg

    from wearable_assets.participants.sync import apply_to_instance, partition_changes, upsert_participants
    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
    from wearable_assets.roster import RosterError, load_roster
    from wearable_assets.storage.timescale import Timescale

    path = roster_file or settings.roster_path()
    try:
        participants = load_roster(path)
    except RosterError as exc:
        raise click.ClickException(str(exc)) from None
    changed = upsert_participants(Timescale(settings.timescale_dsn()), participants)
    day = today.date() if today else date.today()  # type: ignore[attr-defined]
    with dg.DagsterInstance.get() as instance:
        changes = partition_changes(participants, instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME), day)
        apply_to_instance(instance, changes)
        total = len(instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME))
    click.echo(
        f"roster {path}: {len(participants)} participants, {changed} database rows changed; "
        f"partitions +{len(changes.add)} -{len(changes.remove)} = {total}"
    )


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
    Example: wearable-assets simulators exec -- dagster asset materialize -m wearable_assets.definitions ...
    """
    import os

    from wearable_assets.roster import load_roster
    from wearable_assets.simulators.stack import SimulatorStack, ensure_local_token_key, run_forwarding_signals

    ensure_local_token_key()
    participants = load_roster(settings.roster_path())
    with SimulatorStack(participants, fitbit_mode=fitbit_mode) as stack:
        os.environ.update(stack.env())
        if enroll:
            _enrol_all(participants, stack)
        code = run_forwarding_signals(list(command))
    sys.exit(code)


def _enrol_all(participants: list, stack: object) -> None:
    """Enrol, through the running simulators, the participants without a usable token (see
    ``simulators.enrolment``), and say on stderr what was done to whom."""
    from wearable_assets.fitbit.resources import google_health_resource
    from wearable_assets.simulators.enrolment import enrol_with_simulator
    from wearable_assets.storage.timescale import Timescale

    timescale = Timescale(settings.timescale_dsn())
    resource = google_health_resource().process_config_and_initialize()
    outcome = enrol_with_simulator(participants, timescale, resource, stack.google)  # type: ignore[attr-defined]
    for line in outcome.lines():
        click.echo(line, err=True)


@cli.command()
@click.option("--participants", "participant_count", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Demo cohort size (beyond the 5 shipped participants a roster is generated).")
@click.option("--days", type=click.IntRange(1, 366), default=3, show_default=True, help="Days ending yesterday.")
@click.option("--last-day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Last day (default yesterday).")
def demo(participant_count: int, days: int, last_day: object) -> None:
    """Run the main job on the demo cohort against the simulators and print a summary."""
    import warnings

    import dagster as dg

    from wearable_assets.demo import ingest_outcomes, lake_counts, run_demo, table_counts

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


def _register_domain_commands() -> None:
    """Commands that live in their own module: enrolment (Fitbit), the read API (serving), the doctor."""
    from wearable_assets.doctor import doctor
    from wearable_assets.fitbit.cli import enroll, token_key
    from wearable_assets.serving.cli import serve

    cli.add_command(doctor)
    cli.add_command(enroll)
    cli.add_command(token_key)
    cli.add_command(serve)


_register_domain_commands()


def main() -> None:
    """Run the CLI; a failure the operator can fix (database down, malformed token key) is one
    line with the fix and exit status 2 (``operator_errors``), anything else keeps its traceback."""
    from wearable_assets.operator_errors import explain

    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
