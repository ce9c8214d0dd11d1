"""The built wheel is a complete install: in a fresh venv, away from the checkout, it migrates a database.

The source tree is not on that interpreter's path (other cwd, no PYTHONPATH, the checkout's files
copied to a temporary folder before the build), so the test reads only the files the wheel ships.
The dependencies are not installed again: a ``.pth`` file points the fresh venv at the project's
site-packages, after the venv's own, so the wheel's ``wearable_assets`` is the one imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psycopg
import pytest

from wearable_assets import settings
from wearable_assets.storage.local_server import temporary_database

REPO = settings.REPO_ROOT
SQL_SOURCE = REPO / "wearable_assets" / "sql"
#: Top-level folders of the checkout that are not part of the installed package (wearable_assets_dev:
#: the development tooling, i.e. the provider simulators, the demo and the ``dagster dev`` driver).
NOT_SHIPPED = ("wearable_assets_tests", "wearable_assets_dev", "benchmarks", "scripts", "roster", "docs", "sql")


def _repo_migrations() -> list[str]:
    """Every migration file in the checkout, as its path under ``sql/`` (``001_core.sql``, ``tsl/001_x.sql``)."""
    files = sorted(SQL_SOURCE.glob("*.sql")) + sorted((SQL_SOURCE / "tsl").glob("*.sql"))
    return [p.relative_to(SQL_SOURCE).as_posix() for p in files]


def _run(cmd: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (tracked or new, not ignored), without build leftovers."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout
    for name in filter(None, listed.split("\0")):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the work tree is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    python: Path
    cli: Path
    env: dict[str, str]
    cwd: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstalledWheel]:
    root = tmp_path_factory.mktemp("wheel")
    tree = _source_copy(root / "src")
    # The build backend comes from the project's venv when it is recent enough (no download);
    # otherwise pip fetches the one pyproject.toml names.
    try:
        local_backend = int(metadata.version("setuptools").split(".")[0]) >= 77
    except metadata.PackageNotFoundError:
        local_backend = False
    isolation = ["--no-build-isolation"] if local_backend else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, tree, "-w", root / "dist"], cwd=root)
    (wheel,) = (root / "dist").glob("wearable_assets-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=root)
    python = venv / "bin" / "python"
    _run([venv / "bin" / "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], cwd=root)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root)
                   .stdout.strip())
    project_libs = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (purelib / "project_dependencies.pth").write_text("".join(f"{p}\n" for p in project_libs))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env[settings.STATE_DIR_ENV] = str(root / "state")
    cwd = root / "elsewhere"
    cwd.mkdir()
    yield InstalledWheel(wheel=wheel, python=python, cli=venv / "bin" / "wearable-assets", env=env, cwd=cwd)


def test_wheel_holds_the_package_and_its_migrations_only(installed: InstalledWheel) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {n.split("/")[0] for n in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"wearable_assets"}, sorted(top)
    assert not [n for n in names if n.split("/")[0] in NOT_SHIPPED or n.startswith("wearable_assets/tests/")]
    assert not [n for n in names if "simulators" in n or n.endswith(("/demo.py", "/webserver.py"))], \
        "development tooling must stay out of the runtime wheel"
    migrations_shipped = sorted(n.removeprefix("wearable_assets/sql/") for n in names
                                if n.startswith("wearable_assets/sql/") and n.endswith(".sql"))
    assert _repo_migrations() and migrations_shipped == sorted(_repo_migrations())


def test_installed_wheel_imports_itself_not_the_checkout(installed: InstalledWheel) -> None:
    probe = (
        "import importlib.util, json, sys, wearable_assets\n"
        "from wearable_assets.storage import migrations\n"
        "print(json.dumps({'package': wearable_assets.__file__, 'sql_dir': str(migrations.SQL_DIR),\n"
        "  'tests': importlib.util.find_spec('wearable_assets_tests') is not None,\n"
        "  'dev': importlib.util.find_spec('wearable_assets_dev') is not None,\n"
        "  'path': sys.path, 'found': [m.path.name for m in migrations.discover()]}))"
    )
    seen = json.loads(_run([installed.python, "-c", probe], cwd=installed.cwd, env=installed.env).stdout)
    venv = installed.python.parent.parent.resolve()
    assert Path(seen["package"]).resolve().is_relative_to(venv)
    assert Path(seen["sql_dir"]).resolve().is_relative_to(venv)
    assert not seen["tests"], "the test package must not be importable from the installed wheel"
    assert not seen["dev"], "the development tooling must not be importable from the installed wheel"
    assert str(REPO) not in seen["path"] and str(REPO.resolve()) not in seen["path"]
    assert seen["found"] == [Path(name).name for name in _repo_migrations()]


@pytest.fixture
def scratch_dsn(timescale_dsn: str) -> Iterator[str]:
    with temporary_database(timescale_dsn, f"wearables_test_{os.getpid()}_wheel") as dsn:
        yield dsn


def test_installed_cli_has_no_development_commands(installed: InstalledWheel) -> None:
    """The simulators and the demo are commands of the checkout's development CLI only: the
    installed ``wearable-assets`` neither lists them nor fails at start-up without them."""
    listed = _run([installed.cli, "--help"], cwd=installed.cwd, env=installed.env).stdout
    commands = {line.split()[0] for line in listed.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert {"db", "roster", "doctor", "serve"} <= commands, listed
    assert not commands & {"simulators", "demo"}, listed


def test_installed_cli_migrates_a_fresh_database(installed: InstalledWheel, scratch_dsn: str) -> None:
    env = {**installed.env, settings.TIMESCALE_DSN_ENV: scratch_dsn}
    first = _run([installed.cli, "db", "migrate"], cwd=installed.cwd, env=env).stdout
    with psycopg.connect(scratch_dsn) as conn:
        recorded: dict[str, str] = dict(conn.execute("SELECT version, filename FROM wearables.schema_migrations").fetchall())
        (license_,) = conn.execute("SHOW timescaledb.license").fetchone() or (None,)
    assert f"timescaledb.license = {license_}" in first
    plain = [name for name in _repo_migrations() if not name.startswith("tsl/")]
    tsl = [name for name in _repo_migrations() if name.startswith("tsl/")]
    expected = {name[:3]: name for name in plain}
    if license_ == "timescale":
        expected |= {f"tsl/{Path(name).name[:3]}": Path(name).name for name in tsl}
    else:  # the Apache edition: TSL files are reported as skipped and not recorded
        assert all(f"skipped tsl/{Path(name).name[:3]}: needs timescaledb.license='timescale'" in first
                   for name in tsl), first
    assert recorded == expected
    assert f"applied: {', '.join(expected)}" in first

    again = _run([installed.cli, "db", "migrate"], cwd=installed.cwd, env=env).stdout
    assert "applied: nothing (up to date)" in again
