"""Token store: encryption at rest, single refresh under concurrency, and the re-consent states."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from wearable_assets.fitbit import landing
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.crypto import TokenCipher, TokenKeyError, generate_key
from wearable_assets.oauth.errors import NeedsReconsent
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants import store as participant_store
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.common import Fault
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

from .conftest import DAY, enrol_directly

DEVICES = "users/me/pairedDevices"


def test_tokens_are_unreadable_without_the_key(google_sim: GoogleHealthSimulator, google_store: TokenStore,
                                               db: TimescaleResource) -> None:
    token = enrol_directly(google_sim, google_store, "P001")["P001"]
    (ciphertext,), = db.fetch("SELECT token_ciphertext FROM wearables.oauth_tokens")
    blob = bytes(ciphertext)
    for secret in (token["access_token"], token["refresh_token"]):
        assert secret.encode() not in blob
    with pytest.raises(TokenKeyError, match="cannot be decrypted with the current WEARABLES_TOKEN_KEY"):
        TokenStore(db, TokenCipher(generate_key())).access_token("P001", "google_health", lambda t: t)
    with pytest.raises(TokenKeyError, match="not a valid Fernet key"):
        TokenCipher("not-a-key")
    assert google_store.access_token("P001", "google_health", lambda t: t) == token["access_token"]


def test_concurrent_runs_refresh_exactly_once(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                             google_store: TokenStore, db: TimescaleResource) -> None:
    token = google_sim.state.issue_tokens("P001")
    token["expires_in"] = 30  # inside the refresh margin: both runs want to refresh
    google_store.save("P001", "google_health", token)
    app = google.oauth_app()
    refresher_calls = []

    def slow_refresh(current: dict[str, Any]) -> dict[str, Any]:
        refresher_calls.append(current["access_token"])
        time.sleep(0.3)  # hold the row lock long enough for the other run to queue behind it
        return app.refresh(current)

    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            store = google.token_store(db)  # its own connections, as a second run would have
            barrier.wait()
            results.append(store.access_token("P001", "google_health", slow_refresh))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert google_sim.state.token_calls["refresh_token"] == 1 and len(refresher_calls) == 1
    assert len(results) == 2 and results[0] == results[1] != token["access_token"]
    # Both runs can use the token they got (it was committed before either used it).
    client = google.client("P001", db)
    assert client.call("GET", DEVICES, what="devices")
    assert google_sim.state.token_calls["refresh_token"] == 1


def test_401_refreshes_once_then_reconsent(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                           google_store: TokenStore, db: TimescaleResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    client = google.client("P001", db)
    google_sim.state.expire_access_tokens("P001")  # the server says expired; our clock says valid
    assert client.call("GET", DEVICES, what="devices")
    assert google_sim.state.token_calls["refresh_token"] == 1

    google_sim.state.inject(Fault("/v4/users/me/pairedDevices", kind="expired_token", count=2))
    with pytest.raises(NeedsReconsent, match="second_401") as err:
        client.call("GET", DEVICES, what="devices")
    assert google_sim.state.token_calls["refresh_token"] == 2  # one refresh per 401 episode, not a loop
    assert "wearable-assets enroll --participant P001 --provider google_health" in str(err.value)
    assert google_store.status("P001", "google_health").reason == "second_401"


def test_revoked_grant_needs_reconsent_and_stops_calling(google: GoogleHealthResource,
                                                         google_sim: GoogleHealthSimulator,
                                                         google_store: TokenStore, db: TimescaleResource) -> None:
    enrol_directly(google_sim, google_store, "P001")
    google_sim.state.revoke_refresh_tokens("P001")
    client = google.client("P001", db)
    with pytest.raises(NeedsReconsent, match="invalid_grant"):
        client.call("GET", DEVICES, what="devices")
    status = google_store.status("P001", "google_health")
    assert (status.auth_state, status.reason) == ("needs_reconsent", "invalid_grant")
    calls = google_sim.state.token_calls["refresh_token"]
    with pytest.raises(NeedsReconsent):
        google.client("P001", db).call("GET", DEVICES, what="devices")
    assert google_sim.state.token_calls["refresh_token"] == calls  # no more attempts with a dead grant

    enrol_directly(google_sim, google_store, "P001")  # re-consent makes the participant active again
    assert google.client("P001", db).call("GET", DEVICES, what="devices")
    assert google_store.status("P001", "google_health").auth_state == "active"


@pytest.mark.parametrize(("switch", "reason"), [("set_account_not_linked", "account_not_linked"),
                                                ("set_permission_denied", "forbidden_403")])
def test_account_problems_flag_the_participant(google: GoogleHealthResource, google_sim: GoogleHealthSimulator,
                                               google_store: TokenStore, db: TimescaleResource, switch: str,
                                               reason: str) -> None:
    enrol_directly(google_sim, google_store, "P001", "P002")
    getattr(google_sim.state, switch)("P001")
    with pytest.raises(NeedsReconsent, match=reason):
        google.client("P001", db).call("GET", DEVICES, what="devices")
    assert google_store.status("P001", "google_health").reason == reason
    assert google.client("P002", db).call("GET", DEVICES, what="devices")  # others are unaffected
    assert google_store.status("P002", "google_health").auth_state == "active"
    assert google_sim.state.token_calls["refresh_token"] == 0  # not an expired-token problem


def test_unenrolled_participant_is_reported_not_crashed(google: GoogleHealthResource, db: TimescaleResource) -> None:
    with pytest.raises(NeedsReconsent, match="not_enrolled") as err:
        google.client("P004", db).call("GET", DEVICES, what="devices")
    assert "wearable-assets enroll --participant P004" in str(err.value)


def test_token_endpoint_outage_is_an_api_error_not_a_reconsent(google: GoogleHealthResource,
                                                               google_sim: GoogleHealthSimulator,
                                                               google_store: TokenStore, db: TimescaleResource,
                                                               lake: LakeResource) -> None:
    token = google_sim.state.issue_tokens("P001")
    token["expires_in"] = 30
    google_store.save("P001", "google_health", token)
    google_sim.state.inject(Fault("/token", kind="status", status=503, count=3))  # every refresh attempt
    participant = participant_store.load(db, ["P001"])["P001"]
    outcome = landing.land_day(ParticipantDay(DAY, "P001"), participant, google.client("P001", db), lake, db)
    assert outcome.status == "api_error" and "token refresh failed" in outcome.detail
    assert google_sim.state.count_calls("/token") == 3  # answered by the injected fault
    assert google_store.status("P001", "google_health").auth_state == "active"  # the grant is fine
    assert google.client("P001", db).call("GET", DEVICES, what="devices")  # and works once the endpoint is back
