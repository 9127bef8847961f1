"""pytest-exp: parameter sweeps, metrics and Bayesian optimization as ordinary pytest runs."""

from __future__ import annotations

from pytest_exp.space import Choice, Draw, Grid, Range, Space, SpaceError, Value
from pytest_exp.trial import Trial

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
