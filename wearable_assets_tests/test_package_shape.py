"""The shape of the runtime package ``wearable_assets``: no import cycle between its modules, no
module over ``MAX_LINES`` lines, and no import of the development tooling or the tests.

The import graph is read with ``ast`` from the package's files, not by importing them, so a cycle
is found even where Python would tolerate it (a function-level import runs only when called).
Every import statement counts: at module level, inside functions and methods, and under
``if TYPE_CHECKING:``, plus ``importlib.import_module("...")`` / ``__import__("...")`` with a
literal name. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module of the
package, else to ``pkg``. The implicit import of a parent package (``import a.b`` runs
``a/__init__.py`` first) is not an edge: Python initialises parents before children, so counting
it would flag every package that re-exports its own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wearable_assets import settings

PACKAGE = settings.REPO_ROOT / "wearable_assets"
#: Packages of the checkout that the runtime package must never import (they are not in its wheel).
FORBIDDEN = ("wearable_assets_dev", "wearable_assets_tests")
#: A module longer than this holds more than one concern: split it (see README, "How it fits together").
MAX_LINES = 450
#: Modules allowed over ``MAX_LINES``, each with the reason. None today.
LONG_MODULE_EXCEPTIONS: dict[str, str] = {}


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module name ``module`` imports, anywhere in its file (see the module docstring)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # ``from pkg import submodule`` needs the submodule, not pkg's own code
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (edges outside the package are dropped)."""
    modules = module_files(root)
    return {m: {t for t in imported_names(m, p, modules) if t in modules and t != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def forbidden_imports(root: Path) -> dict[str, list[str]]:
    """Module -> the names it imports from ``FORBIDDEN`` packages."""
    modules = module_files(root)
    out = {}
    for module, path in modules.items():
        bad = sorted(n for n in imported_names(module, path, modules) if n.split(".")[0] in FORBIDDEN)
        if bad:
            out[module] = bad
    return out


def test_runtime_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 50 and "wearable_assets.settings" in graph["wearable_assets.cli"]  # the graph is real
    assert cycles(graph) == []


def test_runtime_package_has_no_module_over_the_limit() -> None:
    long = {m: n for m, p in module_files(PACKAGE).items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES and m not in LONG_MODULE_EXCEPTIONS}
    assert long == {}, f"split these modules by concern (or list one in LONG_MODULE_EXCEPTIONS with the reason): {long}"
    stale = {m for m in LONG_MODULE_EXCEPTIONS
             if m not in module_files(PACKAGE) or len(module_files(PACKAGE)[m].read_text().splitlines()) <= MAX_LINES}
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): drop from LONG_MODULE_EXCEPTIONS: {stale}"


def test_runtime_package_imports_no_development_tooling_nor_tests() -> None:
    assert forbidden_imports(PACKAGE) == {}


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """A small package with what the checks above must catch: a cycle closed by a function-level
    import, a cycle through ``TYPE_CHECKING``, a relative import, and imports of the forbidden packages."""
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def later():\n    from pkg.a import x\n    return x\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import d\n",
        "sub/__init__.py": "",
        "sub/d.py": "from .. import c\nimport importlib\nimportlib.import_module('wearable_assets_dev.simulators')\n",
        "e.py": "import wearable_assets_tests.shell\nfrom pkg import a\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_checks_catch_what_they_are_for(tangled: Path) -> None:
    graph = import_graph(tangled)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.sub.d"] == {"pkg.c"} and graph["pkg.e"] == {"pkg.a"}
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub.d"]]
    assert forbidden_imports(tangled) == {"pkg.e": ["wearable_assets_tests.shell"],
                                          "pkg.sub.d": ["wearable_assets_dev.simulators"]}
