"""Bayesian optimization behind a small interface; the only module that knows scikit-optimize.

skopt (and numpy) are imported when a study starts, never on a plain pytest run. Everything that
leaves this module is plain Python: skopt hands out numpy scalars, which break xdist reports.
"""

from __future__ import annotations

import functools
import math
import random
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_exp.space import Space, derive_seed
from pytest_exp.trials import Objective


@dataclass(frozen=True)
class OptSettings:
    """How a study proposes points. The defaults were measured (README, bench/optimize.py)."""

    surrogate: str = "GP"
    acq: str = "EI"
    initial_points: int = 10
    liar: str = "cl_min"
    seed: int = 0

    def skopt_kwargs(self, dims: Sequence[Any]) -> dict[str, Any]:
        """Keyword arguments for ``skopt.Optimizer`` with these settings, as a direct user would
        write them (the benchmark calls skopt with exactly these)."""
        from skopt.space import Real
        from skopt.utils import cook_estimator

        if self.surrogate == "GP":
            # Without restarts of the kernel fit: 4x faster per round and no worse (DESIGN.md).
            estimator: Any = cook_estimator("GP", space=dims, random_state=self.seed, n_restarts_optimizer=0)
        else:
            estimator = self.surrogate
        # L-BFGS needs a smooth surrogate (GP) and rounds integer and one-hot dimensions badly.
        lbfgs = self.surrogate == "GP" and all(isinstance(d, Real) for d in dims)
        kwargs: dict[str, Any] = {
            "base_estimator": estimator,
            "n_initial_points": self.initial_points,
            "initial_point_generator": "random",
            "acq_func": self.acq,
            "acq_optimizer": "lbfgs" if lbfgs else "sampling",
            "acq_optimizer_kwargs": {"n_points": 1000 if lbfgs else 10000},
            "random_state": self.seed,
            # skopt never reads old models when proposing; keeping them only grows memory.
            "model_queue_size": 1,
        }
        if self.acq in ("EI", "PI"):
            kwargs["acq_func_kwargs"] = {"xi": 0.0}
        return kwargs


@functools.cache
def _blas() -> Any:
    # Built once: finding the loaded BLAS libraries costs 2 ms, limiting them afterwards 20 us.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def _quiet() -> Iterator[None]:
    """Around every skopt call: no warnings, and one BLAS thread.

    A converged GP proposes a point it has seen and skopt warns; -W error suites must not fail.
    BLAS threads make the small matrices of a GP slower, not faster (3-4x per round measured on
    2 cores), and under xdist they would compete with the workers' own training.
    """
    with warnings.catch_warnings(), _blas().limit(limits=1, user_api="blas"):
        warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
        warnings.filterwarnings("ignore", module="skopt")
        warnings.filterwarnings("ignore", module="sklearn")
        yield


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


class Optimizer:
    """One study's optimizer over a space's search dimensions (``value`` parameters stay fixed).

    Points are dicts of plain values; ``tell`` takes the value to *minimize* (a max objective is
    negated by the caller). ``pending`` points are told a constant lie on a copy before asking, so
    two workers never get the same point.
    """

    def __init__(self, space: Space, settings: OptSettings) -> None:
        self.space = space
        self.settings = settings
        self.dims = space.dimensions()
        self.names = [d.name for d in self.dims]
        self.fixed = space.fixed()
        self._rng = random.Random(derive_seed(settings.seed, "random-search", bits=64))
        self._opt: Any = None
        self.ys: list[float] = []
        if settings.surrogate != "random" and self.dims:
            import skopt

            with _quiet():
                self._opt = skopt.Optimizer(self.dims, **settings.skopt_kwargs(self.dims))

    def _point(self, x: Sequence[Any]) -> dict[str, Any]:
        values = dict(zip(self.names, (_plain(v) for v in x), strict=True))
        return {n: values[n] if n in values else self.fixed[n] for n in self.space.names}

    def _x(self, point: Mapping[str, Any]) -> list[Any]:
        return [point[n] for n in self.names]

    def _lie(self) -> float:
        if not self.ys:
            return 0.0
        mode = self.settings.liar
        if mode == "cl_min":
            return min(self.ys)
        if mode == "cl_max":
            return max(self.ys)
        return sum(self.ys) / len(self.ys)

    def ask(self, pending: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        if not self.dims:
            return dict(self.fixed)
        if self._opt is None:
            from skopt.space import Space as SkSpace

            x = SkSpace(self.dims).rvs(random_state=self._rng.randrange(2**32))[0]
            return self._point(x)
        with _quiet():
            if not pending:
                return self._point(self._opt.ask())
            # skopt caches one proposal until the next tell: ask a twin that has heard the real
            # results and the lies in one tell (one model fit; Optimizer.copy() would fit twice).
            import skopt

            kwargs = self.settings.skopt_kwargs(self.dims)
            twin = skopt.Optimizer(self.dims, **{**kwargs, "random_state": self._rng.randrange(2**32)})
            lies = [self._lie()] * len(pending)
            twin.tell(self._opt.Xi + [self._x(p) for p in pending], list(self._opt.yi) + lies)
            return self._point(twin.ask())

    def tell(self, points: Sequence[Mapping[str, Any]], ys: Sequence[float]) -> None:
        """Observations to minimize; several at once (a replayed history) cost one model fit."""
        if not points:
            return
        values = [float(y) for y in ys]
        self.ys += values
        if self._opt is not None:
            with _quiet():
                self._opt.tell([self._x(p) for p in points], values)


@dataclass
class Study:
    """One test's optimization: hands out points for trial slots and learns from their results.

    Failure policy: a trial that fails, crashes or reports a NaN/infinite objective is told the
    worst objective observed so far (held back until a first success gives one), so the
    optimizer steers away from failing regions instead of proposing them again.
    """

    key: str
    space: Space
    objective: Objective | None
    budget: int
    settings: OptSettings
    optimizer: Optimizer = field(init=False)
    assigned: dict[int, dict[str, Any]] = field(default_factory=dict)
    finished: dict[int, float | None] = field(default_factory=dict)
    _failed: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.optimizer = Optimizer(self.space, self.settings)

    def replay(self, history: Sequence[tuple[int, dict[str, Any], float | None]]) -> None:
        """Earlier trials of this study (index, params, objective or None when failed), in order."""
        good = [(i, p, y) for i, p, y in history if y is not None and math.isfinite(y)]
        self.optimizer.tell([p for _, p, _ in good], [self._sign(y) for _, _, y in good])
        for i, p, y in history:
            self.assigned[i] = p
            self.finished[i] = y
            if y is None or not math.isfinite(y):
                self._failed.append(p)
        self._tell_failures()

    def ask(self, index: int) -> dict[str, Any]:
        if index in self.assigned:  # a retried request, or a slot replaced after a crash
            return self.assigned[index]
        pending = [p for i, p in self.assigned.items() if i not in self.finished]
        point = self.optimizer.ask(pending)
        self.assigned[index] = point
        return point

    def tell(self, index: int, value: float | None) -> None:
        if index in self.finished or index not in self.assigned:
            return
        self.finished[index] = value
        point = self.assigned[index]
        if value is None or not math.isfinite(value):
            self._failed.append(point)
        else:
            self.optimizer.tell([point], [self._sign(value)])
        self._tell_failures()

    def _sign(self, value: float) -> float:
        return -value if self.objective is not None and self.objective.direction == "max" else value

    def _tell_failures(self) -> None:
        if self._failed and self.optimizer.ys:
            worst = max(self.optimizer.ys)
            self.optimizer.tell(self._failed, [worst] * len(self._failed))
            self._failed = []

    def best(self) -> tuple[int, float] | None:
        done = [(i, y) for i, y in self.finished.items() if y is not None and math.isfinite(y)]
        if not done:
            return None
        return min(done, key=lambda iy: self._sign(iy[1]))
