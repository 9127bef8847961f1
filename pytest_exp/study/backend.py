"""The interface every optimizer backend implements, and how a backend is found by name.

A backend is a module (or any object) with a ``SETTINGS`` tuple, the names of the settings it
reads besides ``seed``, which every backend gets (each one in :mod:`pytest_exp.settings`);
``check(space)``, which refuses at collection a space it cannot search; and
``create(space, settings)``, which returns an :class:`Optimizer` for one study. Backends are
imported when a study is collected, never on a plain run.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pytest_exp.space import Space
from pytest_exp.trial import Point


class Optimizer(Protocol):
    """One study's optimizer. Points are dicts of plain values over the whole space (``value``
    parameters included); values are to be *minimized* (the study negates a max objective)."""

    def ask(self, pending: Sequence[Point] = ()) -> Point:
        """A new point; ``pending`` are points handed out and not yet told, which the backend must
        not propose again (a constant liar, or the backend's own mechanism)."""
        ...

    def tell(self, points: Sequence[Point], values: Sequence[float]) -> None:
        """Observations, several at once when a history is replayed (one model fit)."""
        ...


class Backend(Protocol):
    SETTINGS: tuple[str, ...]

    def check(self, space: Space) -> None:
        """Raise SpaceError, at collection, for a space this backend cannot search."""
        ...

    def create(self, space: Space, settings: Mapping[str, Any]) -> Optimizer: ...


BUILTIN = {"skopt": "pytest_exp.study.skopt"}
DEFAULT = "skopt"


def load(name: str = DEFAULT) -> Backend:
    """The backend called ``name``."""
    backend: Backend = importlib.import_module(BUILTIN[name])
    return backend
