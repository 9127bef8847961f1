"""The Optuna backend (``optuna:tpe``, ``optuna:cmaes``, ...): the only module that knows Optuna.

Each study is an in-memory Optuna study driven through its ask-and-tell API; optuna is imported
when a study starts, never on a plain pytest run. A point asked and not yet told stays a RUNNING
trial, which is how Optuna's samplers see pending points (TPE as a constant liar, GP as pending
fantasies); a point told that this process never asked (a history replayed from the store) is
added as a finished trial. Lists are searched as the indices of their values, which is what every
Optuna sampler samples internally anyway, so a list may hold arrays and tables too.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pytest_exp.space import Choice, Draw, Range, Space, SpaceError
from pytest_exp.study import skopt
from pytest_exp.trial import Point, canonical_json, derive_seed, plain

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler

SETTINGS: tuple[str, ...] = ()
"""The settings this backend reads besides the seed and the variant."""
VARIANTS = ("tpe", "cmaes", "qmc", "random", "nsga2", "gp")
DEFAULT_VARIANT = "tpe"

INSTALL = 'optuna is not installed: pip install "pytest-exp[optuna]"'
INSTALL_TORCH = "optuna:gp needs torch (about 900 MB with its CUDA packages): pip install torch"
TINY = sys.float_info.min  # the smallest normal float


def missing(variant: str | None = None) -> str | None:
    """What to install before ``variant`` can run, or None; imports nothing, so a session can
    ask at startup and raise a usage error."""
    if importlib.util.find_spec("optuna") is None:
        return INSTALL
    if variant == "gp" and importlib.util.find_spec("torch") is None:
        return INSTALL_TORCH
    return None


MULTI_OBJECTIVE = ("tpe", "qmc", "random", "nsga2", "gp")
"""The variants whose samplers optimize several objectives at once (CMA-ES optimizes one)."""


def multi_objective(variant: str | None) -> bool:
    return (variant or DEFAULT_VARIANT) in MULTI_OBJECTIVE


def random_state(seed: int) -> int:
    """The seed as Optuna's samplers take it (0 to 2**32 - 1, numpy's range). A seed outside that
    range is mapped by hashing; seeds inside it pass unchanged."""
    return seed if 0 <= seed < 2**32 else derive_seed(seed, "optuna")


def sampler(variant: str, seed: int) -> BaseSampler:
    """The sampler of ``variant``: Optuna's defaults, seeded, with TPE a constant liar and the
    samplers that hand lists to a random sampler (CMA-ES, QMC) quiet about it. QMC is scrambled,
    so that each seed gives its own sequence."""
    import optuna.samplers as s

    with _quiet(logs=True):
        if variant == "tpe":
            return s.TPESampler(seed=seed, constant_liar=True)
        if variant == "cmaes":
            return s.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if variant == "qmc":
            return s.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
        if variant == "random":
            return s.RandomSampler(seed=seed)
        if variant == "nsga2":
            return s.NSGAIISampler(seed=seed)
        if variant == "gp":
            return s.GPSampler(seed=seed)
    raise ValueError(f"unknown optuna variant {variant!r} (expected one of {', '.join(VARIANTS)})")


def distributions(space: Space) -> dict[str, BaseDistribution]:
    """Optuna distributions of the non-fixed parameters, in the space's order.

    Ranges and random parameters search [low, high] inclusive (``step`` and ``n`` are grid
    settings and do not apply) and random parameters keep their prior; a list is categorical over
    its values' indices.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, BaseDistribution] = {}
    for p in space.params.values():
        if isinstance(p, Choice):
            dists[p.name] = CategoricalDistribution(range(len(p.values)))
        elif isinstance(p, (Range, Draw)):
            log = isinstance(p, Draw) and p.prior == "log-uniform"
            if p.dtype == "int":
                dists[p.name] = IntDistribution(int(p.low), int(p.high), log=log)
            else:
                dists[p.name] = FloatDistribution(float(p.low), float(p.high), log=log)
    return dists


@contextmanager
def _quiet(torch: Any = None, *, logs: bool = False) -> Iterator[None]:
    """Around every Optuna call: no warnings and, for GP, one torch thread (its small matrices get
    slower with more, and under xdist they would compete with the workers' own training); with
    ``logs``, no log lines below WARNING.

    Optuna marks QMC and some arguments experimental and -W error suites must not fail; numpy
    warns inside TPE (a log1p of 0) on int ranges wider than 2**51, whose points are fine. Of the
    calls made here only creating a study logs below WARNING ("A new study created in memory"):
    asking and telling log nothing (Optuna logs finished trials in ``optimize``), and setting a
    level costs as much as a random sampler's proposal, so ``ask`` and ``tell`` leave it alone.
    """
    import optuna

    verbosity = optuna.logging.get_verbosity()
    loud = logs and verbosity < optuna.logging.WARNING
    if loud:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = torch.get_num_threads() if torch is not None else 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # inside Optuna's calls only: none of the test's code runs here
            if torch is not None:
                torch.set_num_threads(1)
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(threads)
        if loud:
            optuna.logging.set_verbosity(verbosity)


class OptunaOptimizer:
    """A study's optimizer: one in-memory Optuna study over a space's search dimensions (``value``
    parameters stay fixed). ``study`` is the Optuna study itself."""

    def __init__(self, space: Space, variant: str, seed: int, objectives: int = 1) -> None:
        try:
            import optuna
        except ImportError:
            raise ModuleNotFoundError(INSTALL, name="optuna") from None
        self._torch: Any = None
        if variant == "gp":
            try:
                self._torch = importlib.import_module("torch")  # untyped when installed, absent in CI
            except ImportError:
                raise ModuleNotFoundError(INSTALL_TORCH, name="torch") from None
        self.space = space
        self.variant = variant
        self.fixed = space.fixed()
        self.dists = distributions(space)
        self._values = {p.name: p.values for p in space.params.values() if isinstance(p, Choice)}
        self._indices = {
            n: {canonical_json(v): i for i, v in reversed(list(enumerate(vs)))}
            for n, vs in self._values.items()
        }
        # The trial numbers of points asked (or held for a caller) and not told, by their key.
        self._running: dict[tuple[Any, ...], list[int]] = {}
        with _quiet(self._torch, logs=True):
            self.study: optuna.Study = optuna.create_study(
                directions=["minimize"] * objectives, sampler=sampler(variant, random_state(seed))
            )

    def _point(self, params: Mapping[str, Any]) -> Point:
        values = {n: plain(v) for n, v in params.items()}
        for n, vs in self._values.items():
            values[n] = vs[values[n]]
        return {n: values[n] if n in values else self.fixed[n] for n in self.space.names}

    def _params(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """A point as the Optuna study holds it: a list's value as its index."""
        params = {}
        for n in self.dists:
            v = point[n]
            if n in self._values:
                i = self._indices[n].get(canonical_json(v))
                v = self._values[n].index(v) if i is None else i
            params[n] = v
        return params

    def _key(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        # With each value's type, so that a choice of 1 and True (equal in Python) stay apart.
        return tuple((type(params[n]), params[n]) for n in self.dists)

    def _hold(self, pending: Sequence[Point]) -> None:
        """Make each pending point a RUNNING trial, adding those that are not one yet (points this
        optimizer did not hand out)."""
        if not pending:
            return
        from optuna.trial import TrialState, create_trial

        held = [self._params(p) for p in pending]
        wanted = Counter(map(self._key, held))
        for params in held:
            key = self._key(params)
            numbers = self._running.setdefault(key, [])
            if len(numbers) < wanted[key]:
                trial = create_trial(params=params, distributions=self.dists, state=TrialState.RUNNING)
                numbers.append(len(self.study.get_trials(deepcopy=False)))  # the number it gets
                self.study.add_trial(trial)

    def ask(self, pending: Sequence[Point] = ()) -> Point:
        if not self.dists:
            return dict(self.fixed)
        with _quiet(self._torch):
            self._hold(pending)
            trial = self.study.ask(self.dists)
        params = trial.params
        self._running.setdefault(self._key(params), []).append(trial.number)
        return self._point(params)

    def tell(self, points: Sequence[Point], values: Sequence[float | tuple[float, ...]]) -> None:
        if not self.dists:
            return
        from optuna.trial import create_trial

        with _quiet(self._torch):
            for point, value in zip(points, values, strict=True):
                params = self._params(point)
                numbers = self._running.get(self._key(params))
                told = [float(v) for v in value] if isinstance(value, tuple) else [float(value)]
                if numbers:
                    self.study.tell(numbers.pop(0), told)
                else:
                    trial = create_trial(params=params, distributions=self.dists, values=told)
                    self.study.add_trial(trial)

    def tell_pruned(self, point: Point, curve: Sequence[tuple[int, float]]) -> None:
        """A pruned trial, as Optuna keeps one: its intermediate values and the state PRUNED
        (TPE ranks such trials below the complete ones, by how far they got)."""
        if not self.dists:
            return
        from optuna.trial import TrialState, create_trial

        params = self._params(point)
        numbers = self._running.get(self._key(params))
        with _quiet(self._torch):
            if numbers:
                number = numbers.pop(0)
                trial = self.study.get_trials(deepcopy=False)[number]
                for step, value in curve:  # what Trial.report stores, without its object
                    self.study._storage.set_trial_intermediate_value(trial._trial_id, step, float(value))
                self.study.tell(number, state=TrialState.PRUNED)
            else:
                intermediate = {step: float(value) for step, value in curve}
                self.study.add_trial(
                    create_trial(
                        params=params,
                        distributions=self.dists,
                        state=TrialState.PRUNED,
                        intermediate_values=intermediate,
                    )
                )


def check(space: Space) -> None:
    """Refuse, at collection, bounds Optuna's samplers cannot search: those skopt's arrays cannot
    hold either (see :func:`pytest_exp.study.skopt.check`), and float ranges narrower than the
    smallest normal float (TPE divides by the width)."""
    skopt.check(space)
    for p in space.params.values():
        if isinstance(p, (Range, Draw)) and p.dtype == "float" and float(p.high) - float(p.low) < TINY:
            raise SpaceError(
                f"bounds too narrow to optimize: high - low is below {TINY:.2g} (got [{p.low}, {p.high}])",
                source=space.source,
                param=p.name,
            )


def create(space: Space, settings: Mapping[str, Any]) -> OptunaOptimizer:
    """An optimizer for one study; ``settings`` holds ``seed`` and ``variant`` (default tpe)."""
    variant = settings.get("variant") or DEFAULT_VARIANT
    if variant not in VARIANTS:
        raise ValueError(f"unknown optuna variant {variant!r} (expected one of {', '.join(VARIANTS)})")
    unknown = set(settings) - {"seed", "variant", "objectives", *SETTINGS}
    if unknown:
        raise TypeError(f"optuna backend got settings it does not read: {', '.join(sorted(unknown))}")
    objectives = int(settings.get("objectives", 1))
    if objectives > 1 and not multi_objective(variant):
        raise ValueError(f"optuna:{variant} optimizes one objective, not {objectives}")
    return OptunaOptimizer(space, variant, int(settings.get("seed", 0)), objectives)
