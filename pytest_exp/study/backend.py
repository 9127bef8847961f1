"""The interface every optimizer backend implements, and how a backend is found by name.

A backend is a module (or any object) with a ``SETTINGS`` tuple, the names of the settings it
reads besides ``seed`` and ``variant``, which every backend gets (each one in
:mod:`pytest_exp.settings`); optionally ``VARIANTS`` (``skopt:rf`` names variant ``rf``) and
``implied(variant)``, the settings a variant fixes, and ``missing(variant)``, what the
variant needs installed (None when nothing), and ``multi_objective(variant)``, whether it
optimizes several objectives at once (without it, a backend optimizes one; a multi-objective
study's ``settings`` then also hold ``objectives``, their number); ``check(space)``, which refuses
at collection a space it cannot search; and ``create(space, settings)``, which returns an
:class:`Optimizer` for one study. ``--exp-optimizer`` names one: built in, registered in the
``pytest_exp.optimizers`` entry-point group, or ``module:object``. Backends are imported when a
study is collected, never on a plain run.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pytest_exp.space import Space
from pytest_exp.study import skopt
from pytest_exp.trial import Point


class Optimizer(Protocol):
    """One study's optimizer. Points are dicts of plain values over the whole space (``value``
    parameters included); values are to be *minimized* (the study negates a max objective)."""

    def ask(self, pending: Sequence[Point] = ()) -> Point:
        """A new point; ``pending`` are points handed out and not yet told, which the backend must
        not propose again (a constant liar, or the backend's own mechanism)."""
        ...

    def tell(self, points: Sequence[Point], values: Sequence[float | tuple[float, ...]]) -> None:
        """Observations, several at once when a history is replayed (one model fit): a float
        each, or in a multi-objective study (see :func:`multi_objective`) a tuple each."""
        ...


class Backend(Protocol):
    SETTINGS: tuple[str, ...]

    def check(self, space: Space) -> None:
        """Raise SpaceError, at collection, for a space this backend cannot search."""
        ...

    def create(self, space: Space, settings: Mapping[str, Any]) -> Optimizer:
        """The optimizer of one study; ``settings`` holds its SETTINGS, ``seed`` and ``variant``."""
        ...


GROUP = "pytest_exp.optimizers"
"""The entry-point group third-party backends register in (name = module or module:object)."""
BUILTIN = {"skopt": "pytest_exp.study.skopt", "optuna": "pytest_exp.study.optuna"}
ALIASES = {"random": "skopt:random"}  # random search is skopt's variant of it
DEFAULT = "skopt"
BACKEND_SETTINGS = skopt.SETTINGS
"""Settings of one backend (skopt's): naming one with another backend is an error."""


class BackendError(ValueError):
    """A backend that cannot be found or loaded; the message says what to install or write."""


def choose(text: str = DEFAULT) -> tuple[Backend, str | None]:
    """The backend and variant ``--exp-optimizer`` names: ``NAME[:VARIANT]`` for a backend built
    in or registered in the entry-point group, else ``module:object``."""
    text = ALIASES.get(text, text)
    name, colon, variant = text.partition(":")
    target = BUILTIN.get(name) or _registered(name)
    if target is None:
        if not colon:
            known = ", ".join([*BUILTIN, *ALIASES, *_registered_names()])
            raise BackendError(
                f"unknown optimizer {name!r} (expected one of {known}, a backend registered in the "
                f"{GROUP} entry-point group, or module:object)"
            )
        target, variant = text, ""
    backend = _import(target, text)
    if variant and variant not in variants(backend):
        shown = ", ".join(variants(backend)) or "none"
        raise BackendError(f"optimizer {text!r}: {name} has no variant {variant!r} (expected one of {shown})")
    return backend, variant or None


def named(text: str) -> bool:
    """Whether ``text`` names a built-in or registered backend (not ``module:object``, which may
    be importable only once pytest has put the test's folder on ``sys.path``)."""
    name = ALIASES.get(text, text).partition(":")[0]
    return name in BUILTIN or _registered(name) is not None


def load(text: str = DEFAULT) -> Backend:
    """The backend of ``--exp-optimizer``'s value, without its variant."""
    return choose(text)[0]


def _import(target: str, text: str) -> Backend:
    module_name, _, attr = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise BackendError(f"optimizer {text!r}: cannot import {module_name} ({e})") from None
    for part in filter(None, attr.split(".")):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise BackendError(f"optimizer {text!r}: {module_name} has no {attr!r}") from None
    for needed in ("SETTINGS", "check", "create"):
        if not hasattr(found, needed):
            raise BackendError(f"optimizer {text!r}: {target} is not a backend (it has no {needed})")
    backend: Backend = found
    return backend


def variants(backend: Backend) -> tuple[str, ...]:
    return tuple(getattr(backend, "VARIANTS", ()))


def multi_objective(backend: Backend, variant: str | None) -> bool:
    """Whether ``backend`` (with ``variant``) optimizes several objectives at once."""
    judge = getattr(backend, "multi_objective", None)
    return bool(judge(variant)) if judge is not None else False


def _entry_points() -> Any:
    from importlib.metadata import entry_points  # here: only a named third-party backend needs it

    return entry_points(group=GROUP)


def _registered(name: str) -> str | None:
    for ep in _entry_points():
        if ep.name == name:
            return str(ep.value)
    return None


def _registered_names() -> list[str]:
    return sorted({ep.name for ep in _entry_points()} - set(BUILTIN))
