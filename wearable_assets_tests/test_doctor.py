"""``wearable-assets doctor`` in a working environment (every check OK, exit 0) and in broken ones
(each problem found, with its fix, exit 1), run as an operator runs it: a subprocess."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from wearable_assets import settings
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.oauth.crypto import generate_key
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import load_roster
from wearable_assets.storage import migrations
from wearable_assets.storage.local_server import temporary_database
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_dev.simulators.stack import SimulatorStack
from wearable_assets_tests.shell import plain_env, wearable_assets
from wearable_assets_tests.test_cli import closed_port_dsn

DEMO_ROSTER = settings.REPO_ROOT / "roster" / "demo_roster.csv"
CHECKS = ["database", "timescaledb", "migrations", "roster", "token key", "dagster home",
          "google health", "google oauth", "fitbit", "centrepoint", "centrepoint auth"]


def findings(stdout: str) -> dict[str, tuple[str, str]]:
    """``{check: (OK|PROBLEM, message)}`` from the doctor's fixed-width lines."""
    out: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines():
        status, rest = line[:8].strip(), line[9:]
        check, message = rest[:16].strip(), rest[17:]
        out[check] = (status, message)
    return out


@pytest.fixture
def simulators() -> Iterator[SimulatorStack]:
    with SimulatorStack(load_roster(DEMO_ROSTER)) as stack:
        yield stack


def _store_tokens(timescale: TimescaleResource, stack: SimulatorStack, key: str) -> None:
    env = stack.env()
    resource = GoogleHealthResource(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_CLIENT_SECRET"],
                                    token_key=key)
    store = resource.token_store(timescale)
    for p in ("P001", "P002"):
        store.save(p, "google_health", stack.google.state.issue_tokens(p))


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def test_doctor_passes_in_a_working_environment(
    timescale: TimescaleResource, simulators: SimulatorStack, tmp_path: Path
) -> None:
    key = generate_key()
    upsert_participants(timescale, load_roster(DEMO_ROSTER))
    _store_tokens(timescale, simulators, key)
    env = plain_env(WEARABLES_TIMESCALE_DSN=timescale.dsn, WEARABLES_TOKEN_KEY=key,
                    DAGSTER_HOME=str(_dagster_home(tmp_path)), WEARABLES_ROSTER=str(DEMO_ROSTER), **simulators.env())
    synced = wearable_assets("roster", "sync", env=env)
    assert synced.returncode == 0, synced.stderr
    result = wearable_assets("doctor", env=env, timeout=120)
    found = findings(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(found) == CHECKS
    assert all(status == "OK" for status, _ in found.values()), result.stdout
    assert "none pending" in found["migrations"][1]
    assert "5 participants" in found["roster"][1]
    assert "decrypts all 2 stored tokens" in found["token key"][1]
    assert "5 participants partitions" in found["dagster home"][1]
    assert key not in result.stdout + result.stderr


def test_doctor_reports_every_problem_with_its_fix(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(DEMO_ROSTER.read_text().replace("P004,", "P0|04,"))
    nowhere = closed_port_dsn().replace("postgresql://wearables@", "http://").rsplit("/", 1)[0]
    env = plain_env(
        WEARABLES_TIMESCALE_DSN=closed_port_dsn(), WEARABLES_ROSTER=str(roster), WEARABLES_TOKEN_KEY="not-a-key",
        WEARABLES_GOOGLE_HEALTH_BASE_URL=nowhere, WEARABLES_GOOGLE_OAUTH_TOKEN_URL=nowhere + "/token",
        WEARABLES_FITBIT_BASE_URL=nowhere, CENTREPOINT_BASE_URL=nowhere, CENTREPOINT_TOKEN_URL=nowhere + "/token",
    )
    result = wearable_assets("doctor", env=env, timeout=120)
    found = findings(result.stdout)
    assert result.returncode == 1
    assert list(found) == CHECKS
    assert all(status == "PROBLEM" for status, _ in found.values()), result.stdout
    assert found["database"][1].endswith("run `make db` or set WEARABLES_TIMESCALE_DSN")
    assert "row 5" in found["roster"][1] or "P0|04" in found["roster"][1], found["roster"]
    assert found["token key"][1].endswith("generate one with `wearable-assets token-key` and put it in WEARABLES_TOKEN_KEY")
    assert found["dagster home"][1].startswith("DAGSTER_HOME is not set")
    for endpoint, variable in [("google health", "WEARABLES_GOOGLE_HEALTH_BASE_URL"), ("fitbit", "WEARABLES_FITBIT_BASE_URL"),
                               ("centrepoint", "CENTREPOINT_BASE_URL")]:
        assert found[endpoint][1].startswith(f"cannot reach {nowhere}") and found[endpoint][1].endswith(variable)
    assert "Traceback" not in result.stderr


def test_doctor_finds_pending_migrations_a_wrong_key_and_an_unsynced_home(
    timescale: TimescaleResource, simulators: SimulatorStack, tmp_path: Path
) -> None:
    """The database answers, but: an empty database, then tokens stored under another key."""
    upsert_participants(timescale, load_roster(DEMO_ROSTER))
    _store_tokens(timescale, simulators, generate_key())
    home = _dagster_home(tmp_path)
    base = dict(WEARABLES_TOKEN_KEY=generate_key(), DAGSTER_HOME=str(home), **simulators.env())

    found = findings(wearable_assets("doctor", env=plain_env(WEARABLES_TIMESCALE_DSN=timescale.dsn, **base)).stdout)
    assert found["token key"][0] == "PROBLEM" and "cannot decrypt the stored tokens of P001, P002" in found["token key"][1]
    assert found["dagster home"] == ("PROBLEM", (f"DAGSTER_HOME={home} has no participants partitions: "
                                                 "run `wearable-assets roster sync`"))
    assert found["migrations"][0] == "OK"

    server = make_conninfo(timescale.dsn, dbname="postgres")
    with temporary_database(server, f"wearables_doctor_{tmp_path.name[-8:].lower()}") as empty:
        result = wearable_assets("doctor", env=plain_env(WEARABLES_TIMESCALE_DSN=empty, **base))
    found = findings(result.stdout)
    assert result.returncode == 1
    assert found["database"][0] == "OK"
    assert found["timescaledb"] == ("PROBLEM", ("the extension is not created in this database yet: "
                                                "run `wearable-assets db migrate`"))
    assert found["migrations"][0] == "PROBLEM"
    pending = len([m for m in migrations.discover() if not m.requires_tsl])  # every shipped core migration
    assert found["migrations"][1].startswith(f"{pending} pending (001_core.sql, ") and found["migrations"][1].endswith(
        "run `wearable-assets db migrate`")
