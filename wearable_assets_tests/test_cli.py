"""Operator errors of ``wearable-assets``: one line with the fix, exit status 2, no traceback."""

from __future__ import annotations

import socket

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from wearable_assets.oauth.crypto import generate_key
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.shell import plain_env, wearable_assets, wearable_assets_dev


def closed_port_dsn() -> str:
    """A DSN whose port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://wearables@127.0.0.1:{port}/wearables"


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("command", [("db", "migrate"), ("roster", "sync"), ("doctor",)])
def test_database_unreachable_is_one_line(command: tuple[str, ...], tmp_path) -> None:
    dsn = closed_port_dsn()
    result = wearable_assets(*command, env=plain_env(WEARABLES_TIMESCALE_DSN=dsn, DAGSTER_HOME=str(tmp_path)))
    if command == ("doctor",):  # the doctor reports every check, one line each, and exits 1
        assert result.returncode == 1
        from wearable_assets_tests.test_doctor import findings

        status, line = findings(result.stdout)["database"]
        assert status == "PROBLEM"
    else:
        assert result.returncode == 2, result.stdout + result.stderr
        line = _one_error_line(result.stderr)
        assert line.startswith("error: cannot reach the database at " + dsn)
    assert "Connection refused" in line
    assert line.endswith("run `make db` or set WEARABLES_TIMESCALE_DSN")


def test_refused_login_is_one_line_and_masks_the_password(timescale: TimescaleResource) -> None:
    server = conninfo_to_dict(timescale.dsn)
    url = f"postgresql://nobody:hunter2@{server['host']}:{server['port']}/{server['dbname']}"
    keywords = make_conninfo(timescale.dsn, user="nobody", password="hunter2")
    for dsn in (url, keywords):
        result = wearable_assets("db", "migrate", env=plain_env(WEARABLES_TIMESCALE_DSN=dsn))
        assert result.returncode == 2
        line = _one_error_line(result.stderr)
        assert "hunter2" not in result.stderr + result.stdout and "***" in line
    assert 'role "nobody" does not exist' in line and "check the role, password and database name" in line


@pytest.mark.parametrize("key", ["not-a-key", generate_key()[:-2]])
def test_malformed_token_key_is_one_line(key: str, timescale: TimescaleResource) -> None:
    env = plain_env(WEARABLES_TIMESCALE_DSN=timescale.dsn, WEARABLES_TOKEN_KEY=key)
    result = wearable_assets_dev("simulators", "exec", "--", "true", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    line = _one_error_line(result.stderr)
    assert key not in line
    assert line == ("error: WEARABLES_TOKEN_KEY is not a valid Fernet key (it must be 32 url-safe base64-encoded "
                    "bytes): generate one with `wearable-assets token-key` and put it in WEARABLES_TOKEN_KEY")




def test_missing_dagster_home_folder_is_one_line(timescale: TimescaleResource, tmp_path) -> None:
    """The CLI defaults DAGSTER_HOME to <state>/dagster_home; a folder that is not there yet is named."""
    missing = tmp_path / "state" / "dagster_home"
    for env in (plain_env(WEARABLES_TIMESCALE_DSN=timescale.dsn, WEARABLES_STATE_DIR=str(tmp_path / "state")),
                plain_env(WEARABLES_TIMESCALE_DSN=timescale.dsn, DAGSTER_HOME=str(missing))):
        result = wearable_assets("roster", "sync", env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        # The roster reached the database first (its INFO line may precede): the error is the last line.
        assert result.stderr.strip().splitlines()[-1] == (
            f"error: DAGSTER_HOME={missing} is not an existing absolute folder: run `make dagster-home` "
            "(or create the folder and copy the repo's dagster.yaml into it)")
