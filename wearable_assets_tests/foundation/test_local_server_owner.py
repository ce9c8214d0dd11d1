"""Another checkout's project-local server is refused on the default DSN, never used silently."""

from __future__ import annotations

import psycopg
import pytest

from wearable_assets import settings
from wearable_assets.operator_errors import explain
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets.storage.timescale import ForeignLocalServer, check_local_server_owner


def _session(dsn: str, owner: str) -> psycopg.Connection:
    """A connection whose session sees ``owner`` where scripts/timescaledb.sh records the server's."""
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SELECT set_config('wearables.state_dir', %s, false)", (owner,))
    return conn


def test_the_default_dsn_refuses_a_server_owned_by_another_checkout(
    timescale: TimescaleResource, monkeypatch: pytest.MonkeyPatch, tmp_path,
) -> None:
    monkeypatch.delenv(settings.TIMESCALE_DSN_ENV, raising=False)
    monkeypatch.setenv(settings.STATE_DIR_ENV, str(tmp_path / "mine"))
    default = settings.local_dsn()
    with _session(timescale.dsn, "/elsewhere/.state") as conn:
        with pytest.raises(ForeignLocalServer) as refused:
            check_local_server_owner(conn, default)
    message = explain(refused.value)
    assert message is not None and "/elsewhere/.state" in message and str(tmp_path / "mine") in message
    assert settings.PG_PORT_ENV in message and settings.TIMESCALE_DSN_ENV in message

    # Its own server, a server that records no owner, and any server named on purpose through
    # WEARABLES_TIMESCALE_DSN are used.
    with _session(timescale.dsn, str(tmp_path / "mine")) as conn:
        check_local_server_owner(conn, default)
    with _session(timescale.dsn, "") as conn:  # a server started before the owner was recorded
        check_local_server_owner(conn, default)
    monkeypatch.setenv(settings.TIMESCALE_DSN_ENV, default)
    with _session(timescale.dsn, "/elsewhere/.state") as conn:
        check_local_server_owner(conn, default)
