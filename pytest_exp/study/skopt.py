"""The scikit-optimize backend: the only module that knows skopt.

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
from dataclasses import dataclass
from typing import Any

from pytest_exp.space import Choice, Draw, Range, Space, SpaceError
from pytest_exp.trial import Point, canonical_json, derive_seed, plain

SURROGATES = ("GP", "RF", "ET", "random")
ACQUISITIONS = ("EI", "PI", "LCB", "gp_hedge")
LIARS = ("cl_min", "cl_mean", "cl_max")
SETTINGS = ("surrogate", "acq", "initial_points", "liar")
"""The settings this backend reads besides the seed (see :mod:`pytest_exp.settings`)."""
VARIANTS = ("gp", "rf", "et", "random")
"""``skopt:rf`` is ``--exp-surrogate RF``; ``random`` (also ``--exp-optimizer random``) is random search."""


def implied(variant: str) -> dict[str, Any]:
    """The settings a variant fixes."""
    return {"surrogate": "random" if variant == "random" else variant.upper()}


@dataclass(frozen=True)
class OptSettings:
    """How a study proposes points. The defaults were measured (bench/optimize.py)."""

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
            estimator: Any = cook_estimator(
                "GP", space=dims, random_state=self.random_state, n_restarts_optimizer=0
            )
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
            "random_state": self.random_state,
            # skopt never reads old models when proposing; keeping them only grows memory.
            "model_queue_size": 1,
        }
        if self.acq in ("EI", "PI"):
            kwargs["acq_func_kwargs"] = {"xi": 0.0}
        return kwargs

    @property
    def random_state(self) -> int:
        """The seed as numpy takes it (0 to 2**32 - 1). A session seed outside that range (any
        integer is one) is mapped by hashing; seeds inside it pass unchanged, so the studies they
        seeded propose what they always did."""
        return self.seed if 0 <= self.seed < 2**32 else derive_seed(self.seed, "skopt")


def by_index(p: Choice) -> bool:
    """Whether a list goes to skopt as the indices of its values: arrays and tables, which skopt
    cannot take as categories (it hashes them). Scalar lists go as they are: their studies'
    points are what they always were."""
    try:
        for v in p.values:
            hash(v)
    except TypeError:
        return True
    return False


def dimensions(space: Space) -> list[Any]:
    """scikit-optimize dimensions of the non-fixed parameters, named after them.

    Ranges and random parameters search [low, high] inclusive (``step`` and ``n`` are grid
    settings and do not apply); random parameters keep their prior; lists are categorical, over
    their values or, for arrays and tables, over the values' indices (see :func:`by_index`).
    """
    from skopt.space import Categorical, Integer, Real

    dims: list[Any] = []
    for p in space.params.values():
        if isinstance(p, Choice):
            categories = list(range(len(p.values))) if by_index(p) else list(p.values)
            dims.append(Categorical(categories, name=p.name))
        elif isinstance(p, (Range, Draw)):
            prior = p.prior if isinstance(p, Draw) else "uniform"
            kind = Integer if p.dtype == "int" else Real
            dims.append(kind(p.low, p.high, prior=prior, name=p.name))
    return dims


@functools.cache
def _blas() -> Any:
    # Built once: finding the loaded BLAS libraries costs 2 ms, limiting them afterwards 20 us.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def _quiet() -> Iterator[None]:
    """Around every skopt call: no warnings, and one BLAS thread.

    A converged GP proposes a point it has seen and skopt warns; -W error suites must not fail.
    BLAS threads make the small matrices of a GP slower, not faster, and under xdist they would
    compete with the workers' own training.
    """
    with warnings.catch_warnings(), _blas().limit(limits=1, user_api="blas"):
        warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
        warnings.filterwarnings("ignore", module="skopt")
        warnings.filterwarnings("ignore", module="sklearn")
        yield


class SkoptOptimizer:
    """A study's optimizer over a space's search dimensions (``value`` parameters stay fixed).

    ``pending`` points are told a constant lie on a copy before asking, so two workers never get
    the same point. The ``random`` surrogate is random search over the same dimensions.
    """

    def __init__(self, space: Space, settings: OptSettings) -> None:
        self.space = space
        self.settings = settings
        self.dims = dimensions(space)
        self.names = [d.name for d in self.dims]
        self.fixed = space.fixed()
        # Lists searched by index: their values, and each value's index by its canonical text.
        self._values = {
            p.name: p.values for p in space.params.values() if isinstance(p, Choice) and by_index(p)
        }
        self._indices = {
            n: {canonical_json(v): i for i, v in enumerate(vs)} for n, vs in self._values.items()
        }
        self._rng = random.Random(derive_seed(settings.seed, "random-search", bits=64))
        self._opt: Any = None
        if settings.surrogate != "random" and self.dims:
            import skopt

            with _quiet():
                self._opt = skopt.Optimizer(self.dims, **settings.skopt_kwargs(self.dims))

    def _point(self, x: Sequence[Any]) -> Point:
        values = dict(zip(self.names, plain(list(x)), strict=True))
        for n, vs in self._values.items():
            values[n] = vs[values[n]]
        return {n: values[n] if n in values else self.fixed[n] for n in self.space.names}

    def _x(self, point: Mapping[str, Any]) -> list[Any]:
        """A point as skopt takes it: a list searched by index as its value's index."""
        return [
            self._indices[n][canonical_json(point[n])] if n in self._indices else point[n] for n in self.names
        ]

    def _lie(self) -> float:
        ys = [float(y) for y in self._opt.yi]  # every value told so far
        if not ys:
            return 0.0
        mode = self.settings.liar
        if mode == "cl_min":
            return min(ys)
        if mode == "cl_max":
            return max(ys)
        return sum(ys) / len(ys)

    def ask(self, pending: Sequence[Point] = ()) -> Point:
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

    def tell(self, points: Sequence[Point], values: Sequence[float]) -> None:
        if points and self._opt is not None:
            with _quiet():
                self._opt.tell([self._x(p) for p in points], [float(y) for y in values])


INT64 = 2**63 - 1


def check(space: Space) -> None:
    """Refuse, at collection, bounds skopt's arrays cannot hold (a range of any size is a space,
    so these reach a study): ints beyond 64 bits, and floats whose width overflows."""
    for p in space.params.values():
        if not isinstance(p, (Range, Draw)):
            continue
        bounds = f"[{p.low}, {p.high}]"
        if p.dtype == "int" and max(abs(p.low), abs(p.high)) > INT64:
            raise SpaceError(
                f"int bounds must be within 64-bit integers to optimize, +-{INT64:,} (got {bounds})",
                source=space.source,
                param=p.name,
            )
        if math.isinf(float(p.high) - float(p.low)):
            raise SpaceError(
                f"bounds too wide to optimize: high - low overflows a float (got {bounds})",
                source=space.source,
                param=p.name,
            )


def create(space: Space, settings: Mapping[str, Any]) -> SkoptOptimizer:
    # The variant is in the surrogate already (see implied).
    return SkoptOptimizer(space, OptSettings(**{k: v for k, v in settings.items() if k != "variant"}))
