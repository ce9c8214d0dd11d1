"""``wearable-assets enroll``: consent a participant to Google Health (or the legacy Fitbit API).

Registered in the top-level CLI (``wearable_assets/cli.py``); also runnable on its own as
``python -m wearable_assets.fitbit.cli enroll …``. Credentials come from the environment
(``GOOGLE_CLIENT_ID``/``GOOGLE_CLIENT_SECRET`` or ``FITBIT_CLIENT_ID``/``FITBIT_CLIENT_SECRET``,
and ``WEARABLES_TOKEN_KEY``), endpoints from the same variables the pipeline reads.
"""

from __future__ import annotations

import click

from wearable_assets import settings
from wearable_assets.fitbit import google_health, legacy
from wearable_assets.fitbit.enrol import EnrolmentError, enrol
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.oauth.app import OAuthConfigError
from wearable_assets.oauth.crypto import TokenKeyError, generate_key
from wearable_assets.oauth.errors import TokenEndpointError
from wearable_assets.participants import store as participant_store
from wearable_assets.settings import (
    FITBIT_CLIENT_ID_ENV,
    FITBIT_CLIENT_SECRET_ENV,
    GOOGLE_CLIENT_ID_ENV,
    GOOGLE_CLIENT_SECRET_ENV,
    TOKEN_KEY_ENV,
)
from wearable_assets.storage.timescale import Timescale


def _env(name: str) -> str:
    try:
        return settings.required(name, "see docs/fitbit.md, 'Configuration'")
    except settings.SettingError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("enroll")
@click.option("--participant", "participant_id", required=True, help="Participant id from the roster, e.g. P001.")
@click.option("--provider", type=click.Choice([google_health.PROVIDER, legacy.PROVIDER]), default=None,
              help="Default: the participant's fitbit_provider in the roster (google_health if empty).")
@click.option("--port", type=int, default=8765, show_default=True,
              help="Port of the callback server on 127.0.0.1 (register http://127.0.0.1:PORT/callback as redirect URI).")
@click.option("--login-hint", default=None,
              help="Account to preselect on the consent page (default: the roster's fitbit_user_id).")
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True, help="Seconds to wait for consent.")
def enroll(participant_id: str, provider: str | None, port: int, login_hint: str | None, timeout_s: float) -> None:
    """Print the consent URL, wait for the callback, store the participant's tokens encrypted."""
    from wearable_assets.resources import ensure_local_environment

    ensure_local_environment()
    timescale = Timescale(settings.timescale_dsn())
    participant = participant_store.find(timescale, participant_id)
    if participant is None:
        raise click.ClickException(
            f"participant {participant_id} is not in wearables.participants: add them to the roster and run "
            "`wearable-assets roster sync` first"
        )
    provider = provider or participant.fitbit_provider or google_health.PROVIDER
    hint = login_hint or participant.fitbit_user_id or participant_id
    try:
        if provider == google_health.PROVIDER:
            resource: GoogleHealthResource | FitbitLegacyResource = GoogleHealthResource(
                client_id=_env(GOOGLE_CLIENT_ID_ENV), client_secret=_env(GOOGLE_CLIENT_SECRET_ENV),
                token_key=_env(TOKEN_KEY_ENV))
            params = {"access_type": "offline", "prompt": "consent", "login_hint": hint}
        else:
            resource = FitbitLegacyResource(client_id=_env(FITBIT_CLIENT_ID_ENV),
                                            client_secret=_env(FITBIT_CLIENT_SECRET_ENV), token_key=_env(TOKEN_KEY_ENV))
            params = {"prompt": "consent", "login_hint": hint}
        result = enrol(
            participant_id=participant_id,
            app=resource.oauth_app(),
            store=resource.token_store(timescale),
            announce=lambda url: click.echo(f"Open this URL to give consent for {participant_id}:\n{url}", err=False),
            port=port,
            timeout_s=timeout_s,
            auth_params=params,
            check_gone=provider == legacy.PROVIDER,  # turned off on 2026-11-02: fail at once on 410
        )
    except (EnrolmentError, OAuthConfigError, TokenEndpointError, TokenKeyError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another --port") from None
    click.echo(f"enrolled {result.participant_id} with {result.provider}: tokens stored encrypted")
    if result.missing_scopes:
        click.echo("warning: the participant did not grant: " + ", ".join(result.missing_scopes), err=True)


@click.command("token-key")
def token_key() -> None:
    """Print a new random key for WEARABLES_TOKEN_KEY (keep it with your other secrets)."""
    click.echo(generate_key())


@click.group()
def main() -> None:
    """Fitbit enrolment commands (standalone entry point)."""


main.add_command(enroll)
main.add_command(token_key)

if __name__ == "__main__":
    main()
