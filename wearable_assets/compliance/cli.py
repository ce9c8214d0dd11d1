"""``wearable-assets reconsent``: read and move the re-consent ledger from the command line.

Detections and consent are written by the pipeline and ``wearable-assets enroll`` themselves;
this command records what happens outside it (the invitation e-mail, the history backfill, the
coordinator's check that data flows again) and shows the ledger.
"""

from __future__ import annotations

import click

from wearable_assets import settings
from wearable_assets.compliance import ledger
from wearable_assets.storage.timescale import Timescale

_FORWARD = [s for s in ledger.STATES if s not in ("needs_reconsent", "legacy_fitbit_token", "consented")]


@click.group("reconsent")
def reconsent() -> None:
    """The re-consent ledger (who must consent again, and how far each participant got)."""


@reconsent.command("advance")
@click.option("--participant", "participant_id", required=True)
@click.option("--provider", type=click.Choice(["google_health", "fitbit_legacy"]), required=True)
@click.option("--to", "to_state", type=click.Choice(_FORWARD), required=True,
              help="The step taken: invited_to_google_health, history_backfilled or verified.")
@click.option("--reason", required=True, help="What happened, e.g. 'invitation e-mailed 2026-11-20'.")
def advance(participant_id: str, provider: str, to_state: str, reason: str) -> None:
    """Record a step forward; refused (exit 1, nothing written) when it would move backwards."""
    timescale = Timescale(settings.timescale_dsn())
    with timescale.connect() as conn:
        try:
            entry = ledger.advance(conn, participant_id, provider, to_state, reason)
        except ledger.LedgerError as exc:
            raise click.ClickException(str(exc)) from None
        conn.commit()
    click.echo(f"{entry.participant_id} ({entry.provider}): {entry.state} since {entry.since:%Y-%m-%d %H:%M}Z")


@reconsent.command("show")
@click.option("--study", "study_id", default=None)
def show(study_id: str | None) -> None:
    """One line per participant and provider: state, since when, why."""
    timescale = Timescale(settings.timescale_dsn())
    with timescale.connect() as conn:
        rows = ledger.ledger_rows(conn, study_id)
    for row in rows:
        click.echo(f"{row['participant_id']}\t{row['provider']}\t{row['state']}\t{row['since']:%Y-%m-%d %H:%M}Z"
                   f"\t{row['reason']}")
    if not rows:
        click.echo("nobody needs to consent again")
