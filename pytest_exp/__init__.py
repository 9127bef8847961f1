"""pytest-exp: parameter sweeps, metrics and Bayesian optimization as ordinary pytest runs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pytest_exp.space import Choice, Draw, Grid, Range, Space, SpaceError, Trial, Value

try:
    __version__ = version("pytest-exp")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["Choice", "Draw", "Grid", "Range", "Space", "SpaceError", "Trial", "Value", "__version__"]
