"""The package's import graph: no cycles, every module importing only modules below it in the
order docs/architecture.md draws, and each heavy library imported by its one module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "pytest_exp"

# Bottom first. A module may import only modules before it (function-level and TYPE_CHECKING
# imports included: they are dependencies too).
LAYERS = [
    "trial",
    "pareto",
    "space",
    "summary",
    "tolerance",
    "baseline",
    "gate",
    "study.skopt",
    "study.optuna",
    "study.pruning",
    "settings",
    "report",
    "store",
    "study.backend",
    "study.study",
    "study.resume",
    "study.wire",
    "study.proposer",
    "gpu",
    "interrupt",
    "metrics",
    "items",
    "messages",
    "session",
    "fixtures",
    "worker",
    "results",
    "cli",
    "plugin",
    "__init__",
    "__main__",
    "study.__init__",
]
# Third-party libraries that only their backend module may import.
OWNERS = {
    "skopt": "study.skopt",
    "threadpoolctl": "study.skopt",
    "optuna": "study.optuna",
    "torch": "study.optuna",
    "matplotlib": "report",
}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path) -> tuple[set[str], set[str]]:
    """The package's modules and the top-level outside packages that ``path`` imports."""
    ours, outside = set(), set()
    known = modules()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("pytest_exp."):
                inner = name.removeprefix("pytest_exp.")
                if inner in known:
                    ours.add(inner)
            elif name != "pytest_exp":
                outside.add(name.split(".")[0])
    return ours, outside


def test_every_module_has_a_layer() -> None:
    assert sorted(modules()) == sorted(LAYERS)


def test_modules_import_only_modules_below_them() -> None:
    upward = []
    for name, path in modules().items():
        for dep in imports(path)[0] - {name}:
            if LAYERS.index(dep) > LAYERS.index(name):
                upward.append(f"{name} -> {dep}")
    assert upward == []  # an upward import is a cycle waiting to happen


def test_heavy_libraries_are_imported_by_their_one_module() -> None:
    found = {
        f"{name} imports {lib}"
        for name, path in modules().items()
        for lib in imports(path)[1]
        if lib in OWNERS and OWNERS[lib] != name
    }
    assert found == set()
