"""``wearable-assets``: the operator's command line (database, roster, enrolment, doctor, read API).

Each domain contributes its own commands (e.g. ``fitbit/cli.py``); this module only groups them.
Every command fills in the local defaults (``resources.ensure_local_environment``) so the same
command works against the project-local stack and, with environment variables set, a real one.
The simulators and the demo are development tooling, not commands of an installed package:
``python -m wearable_assets_dev`` in the checkout (``wearable_assets_dev/cli.py``).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import click

from wearable_assets import settings
from wearable_assets.resources import ensure_local_environment


def prepare(verbose: bool) -> None:
    """What every command of both CLIs (this one and the dev tooling's) starts with: our log lines
    at INFO (DEBUG with -v), everyone else's at WARNING, and the local defaults in place."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wearable_assets").setLevel(logging.DEBUG if verbose else logging.INFO)
    ensure_local_environment()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Collect wearable data per participant-day (see README.md)."""
    prepare(verbose)


@cli.group()
def db() -> None:
    """TimescaleDB schema."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations from wearable_assets/sql/ and report the TimescaleDB licence."""
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
@click.option("--force", is_flag=True,
              help="Apply changes that unlink the devices of participants who already have data, remove "
                   "such participants, and remove partition keys the roster does not know (each is printed).")
def roster_sync(roster_file: str | None, today: object, force: bool) -> None:
    """Write the roster to wearables.participants and the Dagster 'participants' partitions.

    The same work the roster sensor does on its tick, for CI and first set-up (there is no
    Dagster CLI command that adds dynamic partitions). Like the sensor it refuses, and applies
    nothing, when the change would unlink a device of a participant who already has data;
    --force applies it and prints what was forced.
    """
    import dagster as dg
    import psycopg

    from wearable_assets.participants.plan import RosterRefused, sync_roster
    from wearable_assets.participants.sync import apply_to_instance
    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
    from wearable_assets.storage.timescale import Timescale

    path = Path(roster_file) if roster_file else settings.roster_path()
    participants = _load_roster_or_exit(path, "fix the roster file; nothing was applied")
    day = today.date() if today else date.today()  # type: ignore[attr-defined]
    # A missing DAGSTER_HOME or an unreachable database is one line with the fix (``main``); the
    # database is tried first, before Dagster's instance logs anything.
    with psycopg.connect(settings.timescale_dsn(), connect_timeout=10):
        pass
    with dg.DagsterInstance.get() as instance:
        existing = instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
        try:
            plan = sync_roster(Timescale(settings.timescale_dsn()), participants, existing, day,
                               force=force, source=path.name)
        except RosterRefused as exc:
            raise _problems_exit(exc.problems, "nothing applied: fix the roster, or re-run with --force if the "
                                              "change is intended") from None
        apply_to_instance(instance, plan.partitions)
        total = len(instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME))
    for refusal in plan.refusals:
        click.echo(f"forced: {refusal}")
    click.echo(f"roster {path}: {len(participants)} participants; {plan.summary()} = {total}")


@roster.command("validate")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Treat this date as today for enrolment windows.")
def roster_validate(path: str | None, today: object) -> None:
    """Check a roster file before it goes live; exit 1 with one line per problem.

    Checks the file (header, every row) and, when the database is reachable, what `roster sync`
    or the sensor would refuse: devices unlinked from participants who already have data,
    removed participants with data, partition keys the roster does not know. Writes nothing.
    PATH defaults to $WEARABLES_ROSTER or roster/demo_roster.csv.
    """
    import psycopg

    from wearable_assets.participants.plan import plan_roster
    from wearable_assets.storage.timescale import Timescale

    roster_path = Path(path) if path else settings.roster_path()
    participants = _load_roster_or_exit(roster_path, "fix the roster file and validate it again")
    day = today.date() if today else date.today()  # type: ignore[attr-defined]
    existing = _participant_partitions_or_none()
    timescale = Timescale(settings.timescale_dsn(), apply_migrations=False)
    try:
        with timescale.connect() as conn:
            plan = plan_roster(conn, participants, existing or [], day, source=roster_path.name)
            conn.rollback()
    except psycopg.errors.UndefinedTable:
        click.echo(f"{roster_path}: OK, {len(participants)} participants (the database has no wearables schema yet: "
                   "nothing to unlink)")
        return
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"note: database {settings.mask_dsn(settings.timescale_dsn())} not reachable ({reason}): "
                   "checked the file only, not the unlink rule", err=True)
        click.echo(f"{roster_path}: file OK, {len(participants)} participants")
        return
    if existing is None:
        click.echo("note: Dagster instance not readable: partition keys were not checked", err=True)
    if plan.refusals:
        raise _problems_exit(plan.refusals, "fix the roster, or apply it with `wearable-assets roster sync --force` "
                                           "if the change is intended")
    click.echo(f"{roster_path}: OK, {len(participants)} participants; applying it would make "
               f"{plan.summary(partitions=existing is not None)}")


def _load_roster_or_exit(path: Path, what_to_do: str) -> list:
    """The roster, or every problem printed one per line and exit 1 (no traceback)."""
    from wearable_assets.roster import RosterError, load_roster

    try:
        return load_roster(path)
    except OSError as exc:
        raise _problems_exit([f"cannot read {path}: {exc.strerror or exc}"], "check the path (or $WEARABLES_ROSTER)") from None
    except RosterError as exc:
        raise _problems_exit(exc.problems, what_to_do) from None


def _participant_partitions_or_none() -> list[str] | None:
    """The 'participants' partition keys of the local Dagster instance, or None if it cannot be read."""
    import dagster as dg

    from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME

    try:
        with dg.DagsterInstance.get() as instance:
            return list(instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME))
    except Exception:
        return None


def _problems_exit(problems: list[str], what_to_do: str) -> SystemExit:
    """Print one line per problem and what to do; the caller raises the returned exit (status 1)."""
    for problem in problems:
        click.echo(problem)
    click.echo(f"{len(problems)} problem{'s' * (len(problems) != 1)}: {what_to_do}", err=True)
    return SystemExit(1)


def _register_domain_commands() -> None:
    """Commands that live with their domain: enrolment (Fitbit), the read API (serving), the
    re-consent ledger (compliance) and the doctor."""
    from wearable_assets.compliance.cli import reconsent
    from wearable_assets.doctor import doctor
    from wearable_assets.fitbit.cli import enroll, token_key
    from wearable_assets.serving.cli import serve

    cli.add_command(doctor)
    cli.add_command(enroll)
    cli.add_command(token_key)
    cli.add_command(serve)
    cli.add_command(reconsent)


_register_domain_commands()


def main() -> None:
    """Run the CLI; a failure the operator can fix (database down, malformed token key) is one
    line with the fix and exit status 2 (``operator_errors.run_cli``), anything else keeps its traceback."""
    from wearable_assets.operator_errors import run_cli

    run_cli(cli)


if __name__ == "__main__":
    main()
