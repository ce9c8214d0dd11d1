"""The documented ``dagster asset materialize`` from a plain shell: works with only DAGSTER_HOME
set (the DSN and the lake default to the project-local server and ``.state/lake``), and answers
a missing DAGSTER_HOME or an unsynced participant with one line instead of a traceback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from wearable_assets import settings
from wearable_assets.oauth.crypto import generate_key
from wearable_assets_tests.shell import DEV_CLI, plain_env, run, wearable_assets

DOCS = settings.REPO_ROOT / "docs" / "orchestration.md"


def documented_materialize() -> str:
    """The ``dagster asset materialize`` block of docs/orchestration.md, as a shell command."""
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    block = next(b for b in blocks if b.lstrip().startswith("dagster asset materialize"))
    return block.replace("\\\n", " ").strip()


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _our_lines(output: str) -> list[str]:
    """Lines that are not Dagster's own CLI notices (its SupersessionWarning for the command)."""
    return [line for line in output.splitlines()
            if line.strip() and "SupersessionWarning" not in line and "return callback(" not in line]


# A blank or relative DAGSTER_HOME is refused by Dagster itself before any project code runs.
@pytest.mark.parametrize("home", [None, ""])
def test_materialize_without_dagster_home_is_one_line(home: str | None) -> None:
    env = plain_env() if home is None else plain_env(DAGSTER_HOME=home)
    result = run(["bash", "-c", documented_materialize()], env, timeout=180)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = _our_lines(result.stdout + result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: DAGSTER_HOME is not set") and "wearable-assets roster sync" in lines[0]
    assert "Traceback" not in result.stderr


def test_materialize_of_unsynced_participant_is_one_line(tmp_path: Path) -> None:
    env = plain_env(DAGSTER_HOME=str(_dagster_home(tmp_path)))
    result = run(["bash", "-c", documented_materialize()], env, timeout=180)
    assert result.returncode == 2
    lines = _our_lines(result.stdout + result.stderr)
    assert lines == [lines[-1]] and "participant 'P001' is not in the 'participants' partitions" in lines[0], lines
    assert "wearable-assets roster sync" in lines[0]


def test_documented_materialize_works_with_only_dagster_home(tmp_path: Path) -> None:
    """No WEARABLES_TIMESCALE_DSN, no WEARABLES_LAKE_URL: the project-local server and the lake folder.

    The state folder is the checkout's own (``.state``: the lake default is ``<state>/lake``, and the
    local server refuses a checkout whose state folder is not the one that started it); the database
    is the local server's ``wearables`` database, which is what "the project-local server" means, and
    a participant-day run replaces its rows, so running this again changes nothing else.
    """
    local_dsn = settings.local_dsn()
    try:
        psycopg.connect(local_dsn, connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.skip(f"the project-local server is not running at {local_dsn} (make db)")
    state = settings.REPO_ROOT / ".state"
    env = plain_env(DAGSTER_HOME=str(_dagster_home(tmp_path)), WEARABLES_TOKEN_KEY=generate_key())
    synced = wearable_assets("roster", "sync", env=env)
    assert synced.returncode == 0, synced.stderr
    command = documented_materialize()
    assert '--partition "2026-11-18|P001"' in command
    result = run([*DEV_CLI, "simulators", "exec", "--", "bash", "-c", command], env, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output
    assert "BetaWarning" not in output and "PreviewWarning" not in output
    with psycopg.connect(local_dsn) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM wearables.participant_day_summary WHERE participant_id = 'P001' "
            "AND local_date = '2026-11-18'").fetchone()[0]
    assert rows == 1
    assert list((state / "lake").rglob("participant_id=P001/date=2026-11-18/*.parquet")), "nothing in the default lake"


def test_resources_follow_the_environment_of_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Read when a run starts, not when the code location loads: defaults when unset, the
    operator's values (or a test's database and lake) when set."""
    import dagster as dg

    from wearable_assets.definitions import defs

    resources = {key: defs.resources[key] for key in ("timescale", "lake")}
    monkeypatch.delenv(settings.TIMESCALE_DSN_ENV, raising=False)
    monkeypatch.delenv(settings.LAKE_URL_ENV, raising=False)
    monkeypatch.delenv(settings.PG_PORT_ENV, raising=False)
    monkeypatch.setenv(settings.STATE_DIR_ENV, str(tmp_path / "state"))
    with dg.build_resources(resources) as built:
        assert built.timescale.dsn == settings.local_dsn() == "postgresql://wearables@127.0.0.1:55432/wearables"
        assert built.lake.url == str((tmp_path / "state" / "lake").resolve())
    monkeypatch.setenv(settings.TIMESCALE_DSN_ENV, "postgresql://someone:secret@db.example:5432/trial")
    monkeypatch.setenv(settings.LAKE_URL_ENV, str(tmp_path / "elsewhere"))
    with dg.build_resources(resources) as built:
        assert built.timescale.dsn == "postgresql://someone:secret@db.example:5432/trial"
        assert built.lake.url == str(tmp_path / "elsewhere")
