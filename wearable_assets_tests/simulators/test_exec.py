"""``python -m wearable_assets_dev simulators exec``: enrols only who has no usable token, never touches a
participant who needs re-consent, and passes SIGTERM/SIGINT on to its command and waits for it.
Run as an operator runs it (subprocesses) against the session's database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from wearable_assets import settings
from wearable_assets.oauth.crypto import generate_key
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import load_roster
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.shell import BIN, DEV_CLI, plain_env, wearable_assets_dev

DEMO_ROSTER = settings.REPO_ROOT / "roster" / "demo_roster.csv"
GOOGLE = ["P001", "P002", "P004"]  # the demo roster's Google Health participants

#: Run inside ``simulators exec``: force a refresh of each participant's stored token at the
#: running simulator (``rejected`` = the current access token), which works only if the
#: simulator honours the stored grant.
REFRESH = """
import sys
from wearable_assets import settings
from wearable_assets.fitbit.resources import google_health_resource
from wearable_assets.storage.timescale import Timescale
r = google_health_resource().process_config_and_initialize()
store, app = r.token_store(Timescale(settings.timescale_dsn())), r.oauth_app()
for pid in sys.argv[1:]:
    current = store.stored_token(pid, "google_health")["access_token"]
    assert store.access_token(pid, "google_health", app.refresh, rejected=current) != current
print("refreshed", *sys.argv[1:])
"""


def _tokens(timescale: TimescaleResource) -> dict[str, tuple]:
    rows = timescale.fetch("SELECT participant_id, token_ciphertext, auth_state, reconsent_reason, updated_at "
                           "FROM wearables.oauth_tokens WHERE provider = 'google_health'")
    return {r[0]: tuple(bytes(v) if isinstance(v, memoryview) else v for v in r[1:]) for r in rows}


def test_second_exec_keeps_tokens_and_never_touches_a_revoked_participant(
    timescale: TimescaleResource, tmp_path: Path
) -> None:
    upsert_participants(timescale, load_roster(DEMO_ROSTER))
    key = generate_key()
    env = plain_env(WEARABLES_TIMESCALE_DSN=timescale.dsn, WEARABLES_TOKEN_KEY=key, WEARABLES_ROSTER=str(DEMO_ROSTER),
                    DAGSTER_HOME=str(tmp_path), WEARABLES_STATE_DIR=str(tmp_path / "state"))

    first = wearable_assets_dev("simulators", "exec", "--", "true", env=env)
    assert first.returncode == 0, first.stderr
    assert "enrolled through the simulator: P001, P002, P004" in first.stderr
    assert {pid: t[1] for pid, t in _tokens(timescale).items()} == dict.fromkeys(GOOGLE, "active")

    # P002 withdraws consent: the store records it (as a refresh answered invalid_grant would).
    timescale.execute("UPDATE wearables.oauth_tokens SET auth_state = 'needs_reconsent', "
                      "reconsent_reason = 'invalid_grant' WHERE participant_id = 'P002'")
    before = _tokens(timescale)

    for round_ in range(2):  # the same key, twice: nothing is re-enrolled, stored tokens keep working
        again = wearable_assets_dev("simulators", "exec", "--", str(BIN / "python"), "-c", REFRESH, "P001", "P004", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "refreshed P001 P004" in again.stdout
        assert "kept their stored tokens: P001, P004" in again.stderr
        assert "left as they are, they need re-consent: P002 (invalid_grant)" in again.stderr
        assert "enrolled" not in again.stderr.replace("re-consent", "")
        after = _tokens(timescale)
        assert after["P002"] == before["P002"], f"round {round_}: the revoked participant was touched"
        assert all(after[p][1] == "active" for p in ("P001", "P004"))

    # Another valid key: the stored tokens are unreadable with it, so P001 and P004 are enrolled
    # again (and say so); P002 still is not touched.
    other = wearable_assets_dev("simulators", "exec", "--", "true", env={**env, "WEARABLES_TOKEN_KEY": generate_key()})
    assert other.returncode == 0, other.stderr
    assert "encrypted with another WEARABLES_TOKEN_KEY): P001, P004" in other.stderr
    final = _tokens(timescale)
    assert final["P002"] == before["P002"]
    assert all(final[p][0] != before[p][0] and final[p][1] == "active" for p in ("P001", "P004"))


CHILD = """
trap 'sleep 1; echo "$1" > "{done}"; exit 0' TERM INT
echo $$ > "{pid}"
while :; do sleep 0.1; done
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("round_", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_reach_the_command_and_the_wrapper_waits_for_it(tmp_path: Path, sig: signal.Signals, round_: int) -> None:
    pid_file, done_file = tmp_path / "child.pid", tmp_path / "child.done"
    script = CHILD.format(pid=pid_file, done=done_file)
    env = plain_env(WEARABLES_TOKEN_KEY=generate_key(), WEARABLES_STATE_DIR=str(tmp_path / "state"))
    wrapper = subprocess.Popen(
        [*DEV_CLI, "simulators", "exec", "--no-enroll", "--", "bash", "-c", script, "-", sig.name],
        env=env, cwd=settings.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert wrapper.poll() is None, wrapper.communicate()
            assert time.monotonic() < deadline, "the command did not start"
            time.sleep(0.1)
        child = int(pid_file.read_text())
        wrapper.send_signal(sig)
        code = wrapper.wait(timeout=60)
        # The wrapper returned only after the command had cleaned up (its trap sleeps 1 s first)
        # and with its exit status; the command is gone, not left running.
        assert done_file.read_text().strip() == sig.name
        assert code == 0
        assert not _alive(child)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()


def test_a_command_killed_by_the_signal_reports_it_as_a_shell_does(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    env = plain_env(WEARABLES_TOKEN_KEY=generate_key(), WEARABLES_STATE_DIR=str(tmp_path / "state"))
    wrapper = subprocess.Popen(
        [*DEV_CLI, "simulators", "exec", "--no-enroll", "--",
         "bash", "-c", f'echo $$ > "{pid_file}"; exec sleep 300'],
        env=env, cwd=settings.REPO_ROOT, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline and wrapper.poll() is None
            time.sleep(0.1)
        child = int(pid_file.read_text())
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=60) == 128 + signal.SIGTERM
        assert not _alive(child)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
