"""The re-consent ledger, written by the real token store and moved by enrolment and the CLI."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
import requests
from click.testing import CliRunner

from wearable_assets.cli import cli
from wearable_assets.oauth.errors import InvalidGrant, NeedsReconsent
from wearable_assets.oauth.store import TokenStore
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.compliance import cohort
from wearable_assets_tests.serving.servers import RunningApi


def entry(timescale: TimescaleResource, pid: str, provider: str) -> tuple[str, str] | None:
    rows = timescale.fetch("SELECT state, reason FROM wearables.reconsent_ledger WHERE participant_id = %s "
                           "AND provider = %s", (pid, provider))
    return rows[0] if rows else None


def steps(timescale: TimescaleResource, pid: str, provider: str) -> list[tuple[str | None, str, str]]:
    return [tuple(r) for r in timescale.fetch(
        "SELECT from_state, to_state, reason FROM wearables.reconsent_transitions WHERE participant_id = %s "
        "AND provider = %s ORDER BY at, transition_id", (pid, provider))]


def dead_refresh(_: dict[str, Any]) -> dict[str, Any]:
    raise InvalidGrant("google_health token endpoint: invalid_grant: Token has been expired or revoked.")


def test_detection_is_recorded_with_the_token_state(timescale: TimescaleResource, seeded: dict) -> None:
    assert entry(timescale, "R001", "fitbit_legacy") == ("legacy_fitbit_token", "http_410")
    assert steps(timescale, "R001", "fitbit_legacy") == [
        (None, "consented", "enrolled"), ("consented", "legacy_fitbit_token", "http_410")]
    store: TokenStore = seeded["store"]
    store.mark_needs_reconsent("F001", "google_health", "account_not_linked", "HTTP 400 ACCOUNT_NOT_LINKED")
    assert entry(timescale, "F001", "google_health") == ("needs_reconsent", "ACCOUNT_NOT_LINKED")
    store.mark_needs_reconsent("H001", "google_health", "forbidden_403", "HTTP 403 Cannot mint UberMint from GaiaMint")
    assert entry(timescale, "H001", "google_health") == ("legacy_fitbit_token", "legacy_403")


def test_invalid_grant_within_a_week_of_consent_is_the_testing_mode_token(timescale: TimescaleResource,
                                                                          seeded: dict) -> None:
    store: TokenStore = seeded["store"]
    # V001 consented just now (seed): a refresh token that dies this soon is a Testing-mode one
    store.save("V001", "google_health", {"access_token": "short", "refresh_token": "r", "expires_in": 5})
    with pytest.raises(NeedsReconsent):
        store.access_token("V001", "google_health", dead_refresh)
    assert entry(timescale, "V001", "google_health") == ("needs_reconsent", "testing_mode_7_day_token")
    # F001's consent was eight days ago: the same failure is a plain invalid_grant
    timescale.execute("UPDATE wearables.reconsent_transitions SET at = at - interval '8 days' "
                      "WHERE participant_id = 'F001'")
    with pytest.raises(NeedsReconsent):  # the API refused F001's access token: refresh, which fails
        store.access_token("F001", "google_health", dead_refresh, rejected="a-F001")
    assert entry(timescale, "F001", "google_health") == ("needs_reconsent", "invalid_grant")
    state_since = timescale.fetch("SELECT auth_state, auth_state_since > now() - interval '1 minute' "
                                  "FROM wearables.oauth_tokens WHERE participant_id = 'F001'")
    assert state_since == [("needs_reconsent", True)]


def test_the_same_detection_from_many_workers_is_one_step(timescale: TimescaleResource, seeded: dict) -> None:
    store: TokenStore = seeded["store"]
    for round_ in range(10):
        pid = "F001" if round_ % 2 else "H001"
        reason = "account_not_linked" if round_ % 4 < 2 else "second_401"
        barrier = threading.Barrier(6)

        def mark(pid: str = pid, reason: str = reason, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            store.mark_needs_reconsent(pid, "google_health", reason)

        threads = [threading.Thread(target=mark) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        history = steps(timescale, pid, "google_health")
        assert history[-1][1:] == ("needs_reconsent", {"account_not_linked": "ACCOUNT_NOT_LINKED"}.get(reason, reason))
        # no two consecutive identical steps, whatever the interleaving
        assert all(a != b for a, b in zip(history, history[1:])), history


def test_enrolment_and_the_cli_move_it_forward_only(timescale: TimescaleResource, seeded: dict,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEARABLES_TIMESCALE_DSN", timescale.dsn)
    runner = CliRunner()
    invite = ["reconsent", "advance", "--participant", "R001", "--provider", "fitbit_legacy",
              "--to", "invited_to_google_health", "--reason", "invitation e-mailed"]
    result = runner.invoke(cli, invite)
    assert result.exit_code == 0, result.output
    assert entry(timescale, "R001", "fitbit_legacy") == ("invited_to_google_health", "invitation e-mailed")
    again = runner.invoke(cli, invite)
    assert again.exit_code == 1 and "only moves forward" in again.output
    # the Google Health consent (what `wearable-assets enroll` stores) closes the legacy step
    seeded["store"].save("R001", "google_health", {"access_token": "new", "expires_in": 3600})
    assert entry(timescale, "R001", "fitbit_legacy") == ("consented", "google_health_consent")
    for to in ("history_backfilled", "verified"):
        result = runner.invoke(cli, ["reconsent", "advance", "--participant", "R001", "--provider", "fitbit_legacy",
                                     "--to", to, "--reason", f"{to} by the coordinator"])
        assert result.exit_code == 0, result.output
    assert [s[1] for s in steps(timescale, "R001", "fitbit_legacy")] == [
        "consented", "legacy_fitbit_token", "invited_to_google_health", "consented", "history_backfilled", "verified"]
    nobody = runner.invoke(cli, ["reconsent", "advance", "--participant", "N001", "--provider", "google_health",
                                 "--to", "verified", "--reason", "x"])
    assert nobody.exit_code == 1 and "no re-consent episode" in nobody.output
    assert steps(timescale, "N001", "google_health") == []
    shown = runner.invoke(cli, ["reconsent", "show", "--study", cohort.STUDY])
    assert "R001\tfitbit_legacy\tverified" in shown.output


def test_ledger_endpoint(compliance_api: RunningApi, timescale: TimescaleResource) -> None:
    entries = requests.get(f"{compliance_api.url}/compliance/reconsent", timeout=30).json()
    legacy = next(e for e in entries if e["participant_id"] == "R001")
    assert (legacy["provider"], legacy["state"], legacy["reason"]) == ("fitbit_legacy", "legacy_fitbit_token", "http_410")
    assert [t["to_state"] for t in legacy["transitions"]] == ["consented", "legacy_fitbit_token"]
    assert requests.get(f"{compliance_api.url}/compliance/reconsent", params={"study_id": cohort.OTHER_STUDY},
                        timeout=30).json() == []
    with psycopg.connect(timescale.dsn) as conn:
        (count,), = conn.execute("SELECT count(*) FROM wearables.reconsent_ledger").fetchall()
    assert len(entries) == count
