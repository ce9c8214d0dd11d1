"""``wearable_assets/settings.py`` is the one place environment variables are named and read.

The scan parses every module of the package: a read of ``os.environ``/``os.getenv`` outside the
settings module whose key is a declared variable (or a ``WEARABLES_*`` literal, or a key the scan
cannot resolve) fails, unless listed below with its reason. The README's configuration table must
list exactly the declared variables, so the docs cannot drift from the code.
"""

from __future__ import annotations

import ast
import re

import pytest

from wearable_assets import settings

PACKAGE = settings.REPO_ROOT / "wearable_assets"
#: Reads allowed outside the settings module, as (module path, variable) -> why.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("wearable_assets/doctor.py", "DAGSTER_HOME"): "saves the exact value (blank included) to restore it after "
    "pointing Dagster at the operator's home for one check",
}
#: Folders not scanned, with the reason.
SKIPPED = {
    "simulators": "loopback stand-ins for the providers, moving to their own package; they export the "
    "variables to the processes they start rather than configure this one",
}
DECLARED = {v.name for v in settings.VARIABLES}


def _key(node: ast.expr) -> str | None:
    """The variable name a key expression stands for, when the scan can tell."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    attr = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
    value = getattr(settings, attr, None) if attr else None
    return value if isinstance(value, str) else None


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) \
        and node.value.id == "os"


def environment_reads(source: str) -> list[tuple[int, str | None]]:
    """(line, variable or None when unresolvable) for each read of one variable from the environment."""
    reads = []
    for node in ast.walk(ast.parse(source)):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_get = isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value)
            getenv = isinstance(func, ast.Attribute) and func.attr == "getenv" \
                and isinstance(func.value, ast.Name) and func.value.id == "os"
            if environ_get or getenv:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            key = node.slice
        if key is not None:
            reads.append((node.lineno, _key(key)))
    return reads


def test_scan_sees_every_form_of_read() -> None:
    source = (
        "import os\nfrom wearable_assets import settings\n"
        "a = os.environ.get('WEARABLES_X')\nb = os.getenv(settings.TOKEN_KEY_ENV)\n"
        "c = os.environ['HOME']\nd = os.environ.get(name)\nos.environ['WEARABLES_Y'] = '1'\n"
    )
    assert environment_reads(source) == [(3, "WEARABLES_X"), (4, "WEARABLES_TOKEN_KEY"), (5, "HOME"), (6, None)]


def test_no_module_outside_settings_reads_a_project_variable() -> None:
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(settings.REPO_ROOT).as_posix()
        if relative == "wearable_assets/settings.py" or path.relative_to(PACKAGE).parts[0] in SKIPPED:
            continue
        for line, name in environment_reads(path.read_text(encoding="utf-8")):
            if (relative, name) in EXCEPTIONS:
                continue
            if name is None or name in DECLARED or name.startswith("WEARABLES_"):
                offences.append(f"{relative}:{line} reads {name or 'an unresolved variable'}")
    assert not offences, "read these through wearable_assets.settings (declare new names there):\n" + \
        "\n".join(offences)


def test_readme_configuration_table_lists_exactly_the_declared_variables() -> None:
    readme = (settings.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration and secrets", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) == DECLARED, (f"missing from README: {sorted(DECLARED - set(listed))}; "
                                     f"not in settings: {sorted(set(listed) - DECLARED)}")


def test_readers_default_validate_and_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    name = settings.REPULL_DAYS_ENV
    monkeypatch.delenv(name, raising=False)
    assert settings.integer(name, 3, minimum=0) == 3
    monkeypatch.setenv(name, "  ")
    assert settings.integer(name, 3, minimum=0) == 3
    monkeypatch.setenv(name, " 5 ")
    assert settings.integer(name, 3, minimum=0) == 5
    for bad, why in (("five", "is not a whole number"), ("-1", "must be at least 0")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(settings.SettingError, match=f"^{name}=.*{why}") as caught:
            settings.integer(name, 3, minimum=0)
        assert "\n" not in str(caught.value)
    monkeypatch.setenv(settings.FRESHNESS_ENV, "0")
    with pytest.raises(settings.SettingError, match="WEARABLES_FRESHNESS_MAX_DAYS='0' must be a positive number"):
        settings.positive_number(settings.FRESHNESS_ENV, 3, "days")
    monkeypatch.setenv(settings.LAKE_DESTINATION_ENV, "s3")
    with pytest.raises(settings.SettingError, match="is not one of filesystem, athena"):
        settings.choice(settings.LAKE_DESTINATION_ENV, "filesystem", ("filesystem", "athena"))
    monkeypatch.delenv(settings.GOOGLE_CLIENT_ID_ENV, raising=False)
    with pytest.raises(settings.SettingError, match="^GOOGLE_CLIENT_ID is not set: see docs"):
        settings.required(settings.GOOGLE_CLIENT_ID_ENV, "see docs/fitbit.md")
    with pytest.raises(KeyError, match="not declared"):
        settings.raw("WEARABLES_NOT_A_SETTING")


def test_every_declared_variable_is_used_by_the_package() -> None:
    """A declared name nobody reads would put a dead row in the README."""
    own_readers = (PACKAGE / "settings.py").read_text(encoding="utf-8").split("\nVARIABLES:", 1)[1]
    sources = own_readers + "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")
                                       if p.name != "settings.py" and "simulators" not in p.parts)
    constants = {value: attr for attr, value in vars(settings).items() if attr.endswith("_ENV")}
    unused = [name for name in DECLARED if constants[name] not in sources and name not in sources]
    assert not unused, f"declared but never read: {sorted(unused)}"
