"""``wearable-assets serve``: run the data API and dashboard with uvicorn.

Binds to 127.0.0.1 by default: the API has no authentication of its own, so exposing it
beyond this machine is a deliberate choice (``--host``), made behind an authenticating proxy.
"""

from __future__ import annotations

import logging

import click

from wearable_assets import settings

HOST_ENV, PORT_ENV = settings.API_HOST_ENV, settings.API_PORT_ENV

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default=lambda: settings.text(HOST_ENV, "127.0.0.1"), show_default="127.0.0.1",
              help=f"Interface to bind (env {HOST_ENV}).")
@click.option("--port", type=int, default=lambda: settings.integer(PORT_ENV, 8000, minimum=1, maximum=65535), show_default="8000",
              help=f"Port to bind (env {PORT_ENV}).")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Apply pending migrations (with the pipeline's DSN, WEARABLES_TIMESCALE_DSN) before serving; "
                   "the API itself then logs in with its own read-only DSN.")
def serve(host: str, port: int, migrate: bool) -> None:
    """Serve the read API (/data, /participants, /metrics, /docs) and the dashboard at /."""
    import uvicorn

    from wearable_assets.serving.api import create_app
    from wearable_assets.serving.config import ServingConfig, describe_dsn

    if migrate:
        from wearable_assets.storage.timescale import Timescale

        try:
            Timescale(settings.timescale_dsn()).migrate()
        except Exception as exc:  # the API still starts and answers 503 until the database is ready
            click.echo(f"warning: migrations not applied ({type(exc).__name__}); the API answers 503 "
                       "until the database is reachable and migrated", err=True)
    config = ServingConfig.from_env()
    click.echo(f"serving the data API on http://{host}:{port}/ (database login {describe_dsn(config.dsn)})")
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", access_log=False)


if __name__ == "__main__":
    serve()
