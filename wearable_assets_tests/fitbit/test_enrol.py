"""``enroll`` end to end: the real command in a subprocess, the simulator's consent page, our
callback server on 127.0.0.1, the code exchange and the encrypted token store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from wearable_assets.fitbit.cli import enroll
from wearable_assets.fitbit.enrol import EnrolmentError, enrol
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.settings import TOKEN_KEY_ENV
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

from .conftest import legacy_resource


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_enrol(sim: GoogleHealthSimulator, db: TimescaleResource, token_key: str, *args: str) -> subprocess.Popen:
    env = os.environ | {
        "WEARABLES_TIMESCALE_DSN": db.dsn, TOKEN_KEY_ENV: token_key,
        "GOOGLE_CLIENT_ID": sim.client_id, "GOOGLE_CLIENT_SECRET": sim.client_secret,
        "WEARABLES_GOOGLE_OAUTH_AUTH_URL": sim.auth_url, "WEARABLES_GOOGLE_OAUTH_TOKEN_URL": sim.token_url,
        "WEARABLES_GOOGLE_HEALTH_BASE_URL": sim.base_url,
    }
    return subprocess.Popen([sys.executable, "-m", "wearable_assets.fitbit.cli", "enroll", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def consent_url(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("http"):
            return line.strip()
    raise AssertionError(f"no consent URL printed; stderr: {proc.stderr.read() if proc.stderr else ''}")


def test_enroll_command_stores_working_tokens(google_sim: GoogleHealthSimulator, db: TimescaleResource,
                                              google: GoogleHealthResource, google_store: TokenStore,
                                              token_key: str) -> None:
    port = free_port()
    proc = start_enrol(google_sim, db, token_key, "--participant", "P001", "--port", str(port))
    url = consent_url(proc)
    assert url.startswith(google_sim.auth_url) and "access_type=offline" in url and "login_hint=P001" in url
    assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in url and "code_challenge=" in url

    page = requests.get(url, timeout=10)  # the simulator approves and redirects to our callback
    assert page.status_code == 200 and "Consent received" in page.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "enrolled P001 with google_health" in out

    status = google_store.status("P001", "google_health")
    assert status.auth_state == "active" and status.expires_at is not None
    assert google.client("P001", db).call("GET", "users/me/pairedDevices", what="devices")
    assert google_sim.state.token_calls["authorization_code"] == 1
    issued = list(google_sim.state.access_tokens) + list(google_sim.state.refresh_tokens)
    assert issued and not any(t in out + err for t in issued)  # tokens never printed
    assert google_sim.client_secret not in out + err


def test_refused_consent_is_reported_and_nothing_stored(google_sim: GoogleHealthSimulator,
                                                        google: GoogleHealthResource,
                                                        google_store: TokenStore) -> None:
    pages: list[requests.Response] = []
    browsers: list[threading.Thread] = []

    def open_in_browser(url: str) -> None:  # what the operator's browser would do, from another thread
        browsers.append(threading.Thread(target=lambda: pages.append(requests.get(url, timeout=10)), daemon=True))
        browsers[0].start()

    with pytest.raises(EnrolmentError, match="consent was not given: access_denied"):
        enrol(participant_id="P001", app=google.oauth_app(), store=google_store, announce=open_in_browser, port=0,
              timeout_s=10, auth_params={"access_type": "offline", "login_hint": "someone-else"})
    browsers[0].join(10)
    assert pages and pages[0].status_code == 400
    assert google_store.status("P001", "google_health").auth_state == "not_enrolled"
    assert google_sim.state.token_calls["authorization_code"] == 0


def test_enroll_rejects_participants_not_in_the_roster(db: TimescaleResource, token_key: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The command fills in local defaults with os.environ.setdefault: set them here so they are undone.
    for name, value in (("WEARABLES_TIMESCALE_DSN", db.dsn), ("WEARABLES_LAKE_URL", str(tmp_path / "lake")),
                        ("DAGSTER_HOME", str(tmp_path))):
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(enroll, ["--participant", "P999", "--port", "0"])
    assert result.exit_code == 1
    assert "P999 is not in wearables.participants" in result.output and "roster sync" in result.output


def test_legacy_enroll_fails_fast_when_fitbit_is_gone(cohort: SyntheticCohort, db: TimescaleResource,
                                                      token_key: str) -> None:
    with FitbitLegacySimulator(cohort) as sim:  # the default mode, as today: 410 on every path
        env = os.environ | {
            "WEARABLES_TIMESCALE_DSN": db.dsn, TOKEN_KEY_ENV: token_key,
            "FITBIT_CLIENT_ID": sim.client_id, "FITBIT_CLIENT_SECRET": sim.client_secret,
            "WEARABLES_FITBIT_BASE_URL": sim.base_url,
        }
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "wearable_assets.fitbit.cli", "enroll", "--participant", "P003",
             "--provider", "fitbit_legacy", "--port", str(free_port()), "--timeout", "120"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        elapsed = time.monotonic() - started
        calls = [(c.method, c.path, c.status) for c in sim.state.calls]
        token_calls = dict(sim.state.token_calls)
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 30  # did not wait for the 120 s callback timeout
    assert "Traceback" not in proc.stderr and "http" not in proc.stdout  # no consent URL, no crash
    assert "cannot enrol P003 with fitbit_legacy: its consent page answered 410 Gone" in proc.stderr
    assert "re-consent P003 via Google Health" in proc.stderr
    assert "wearable-assets enroll --participant P003 --provider google_health" in proc.stderr
    assert calls == [("GET", "/oauth2/authorize", 410)] and token_calls == {}
    status = legacy_resource(sim, token_key).token_store(db).status("P003", "fitbit_legacy")
    assert status.auth_state == "not_enrolled"


def test_legacy_token_endpoint_gone_during_enrolment(cohort: SyntheticCohort, db: TimescaleResource,
                                                      token_key: str) -> None:
    """The consent page still answered but the token endpoint is already gone: same clear error."""
    with FitbitLegacySimulator(cohort, mode="working") as sim:
        legacy = legacy_resource(sim, token_key)
        store = legacy.token_store(db)
        callbacks: list[requests.Response] = []

        def browser(url: str) -> None:
            def run() -> None:
                consent = requests.get(url, allow_redirects=False, timeout=10)  # approved: redirect with a code
                sim.set_mode("gone")  # ... and the shutdown happens before the code is exchanged
                callbacks.append(requests.get(consent.headers["location"], timeout=10))
            threading.Thread(target=run, daemon=True).start()

        with pytest.raises(EnrolmentError) as err:
            enrol(participant_id="P003", app=legacy.oauth_app(), store=store, announce=browser, port=0,
                  timeout_s=20, auth_params={"login_hint": "P003"}, check_gone=True)
        token_calls = dict(sim.state.token_calls)
    message = str(err.value)
    assert "its token endpoint answered 410 Gone" in message and "re-consent P003 via Google Health" in message
    assert callbacks and callbacks[0].status_code == 200  # our callback got the code
    assert token_calls == {}  # the gone server refused before counting a grant
    assert store.status("P003", "fitbit_legacy").auth_state == "not_enrolled"
