"""pytest-exp: parameter sweeps, metrics and Bayesian optimization as ordinary pytest runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType


class _StandardImports:
    """Finds this package's modules ahead of pytest's assertion rewriter, which takes over every
    module of a ``pytest11`` plugin's distribution. Its asserts are internal checks, not test
    assertions; rewritten, every run read each module's cached code through a slower path (a few
    ms a run) and, where bytecode is not written (``PYTHONDONTWRITEBYTECODE``, as in many Docker
    images), parsed and compiled all of it again (60-80 ms a run, measured), where Python itself
    reads the bytecode that pip compiled at install. Installed by this module, which pytest still
    rewrites: it is the first of the package that is imported, and it is small."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith(__name__ + "."):
            return None
        return PathFinder.find_spec(name, path, target)


if _StandardImports not in sys.meta_path:
    sys.meta_path.insert(0, _StandardImports)

from pytest_exp.space import Choice, Draw, Grid, Range, Space, SpaceError, Trial, Value  # noqa: E402

__all__ = ["Choice", "Draw", "Grid", "Range", "Space", "SpaceError", "Trial", "Value", "__version__"]


def __getattr__(name: str) -> str:
    # Looked up when asked for: finding the distribution costs every pytest run a few ms.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-exp")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"
