"""Migration 010 on a database that already holds tokens: the ledger starts from what is known."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from wearable_assets.compliance import ledger
from wearable_assets.storage import migrations
from wearable_assets.storage.local_server import temporary_database

FLAGGED_AT = datetime(2026, 11, 3, 9, 30, tzinfo=timezone.utc)
TOKENS = [  # participant, provider, auth_state, reconsent_reason
    ("P1", "fitbit_legacy", "needs_reconsent", "gone_410"),
    ("P2", "google_health", "needs_reconsent", "account_not_linked"),
    ("P3", "fitbit_legacy", "active", None),
    ("P4", "google_health", "active", None),
    ("P5", "google_health", "needs_reconsent", "forbidden_403"),
    ("P6", "fitbit_legacy", "needs_reconsent", "forbidden_403"),
    ("P7", "google_health", "needs_reconsent", "invalid_grant"),
]


def test_existing_tokens_open_their_episodes(timescale_dsn: str, tmp_path: Path) -> None:
    before = tmp_path / "sql"
    before.mkdir()
    for source in Path(str(migrations.SQL_DIR)).glob("[0-9][0-9][0-9]_*.sql"):
        if int(source.name[:3]) < 10:
            shutil.copy(source, before / source.name)
    with temporary_database(timescale_dsn, f"wearables_m010_{os.getpid()}") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn:
        migrations.migrate(conn, before)  # type: ignore[arg-type]
        for pid, provider, state, reason in TOKENS:
            conn.execute("INSERT INTO wearables.participants (participant_id, study_id, time_zone, enrolled_from, "
                         "fitbit_provider) VALUES (%s, 'S', 'UTC', '2026-10-01', %s)", (pid, provider))
            conn.execute("INSERT INTO wearables.oauth_tokens (participant_id, provider, auth_state, reconsent_reason, "
                         "updated_at) VALUES (%s, %s, %s, %s, %s)", (pid, provider, state, reason, FLAGGED_AT))
        shutil.copy(Path(str(migrations.SQL_DIR)) / "010_compliance.sql", before)
        assert migrations.migrate(conn, before).applied == ["010"]  # type: ignore[arg-type]

        got = {(p, v): (s, r, since) for p, v, s, r, since in conn.execute(
            "SELECT participant_id, provider, state, reason, since FROM wearables.reconsent_ledger").fetchall()}
        expected = {}
        for pid, provider, state, reason in TOKENS:
            if state == "needs_reconsent":
                why = ledger.ledger_reason(provider, reason)
                expected[(pid, provider)] = (ledger.first_state(provider, why), why, FLAGGED_AT)
        expected[("P3", "fitbit_legacy")] = ("legacy_fitbit_token", "legacy_token_at_migration", FLAGGED_AT)
        assert got == expected
        assert conn.execute("SELECT count(*) FROM wearables.reconsent_transitions").fetchone() == (len(expected),)
        assert {r for (r,) in conn.execute("SELECT DISTINCT auth_state_since FROM wearables.oauth_tokens")} == {
            FLAGGED_AT}

        # the trigger: a refresh keeps the time, a change of state moves it
        conn.execute("UPDATE wearables.oauth_tokens SET refreshed_at = now(), updated_at = now() "
                     "WHERE participant_id = 'P4'")
        assert conn.execute("SELECT auth_state_since FROM wearables.oauth_tokens WHERE participant_id = 'P4'"
                            ).fetchone() == (FLAGGED_AT,)
        conn.execute("UPDATE wearables.oauth_tokens SET auth_state = 'needs_reconsent' WHERE participant_id = 'P4'")
        (since,), = conn.execute("SELECT auth_state_since FROM wearables.oauth_tokens WHERE participant_id = 'P4'")
        assert since > FLAGGED_AT
        # the API's view shows it, and still no token column
        columns = [c.name for c in conn.execute("SELECT * FROM wearables.auth_states LIMIT 0").description or []]
        assert columns == ["participant_id", "provider", "auth_state", "reconsent_reason", "auth_state_since"]
