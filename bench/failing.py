"""Failed trials in studies over spaces with a failing region: the failure rule next to the old one
and random search.

Three functions, each with a region where the trial fails (the test raises, or records NaN):

* ``kernel``   a mixed space: ``kernel`` in ``linear, rbf, poly``, log-uniform ``C`` and ``gamma``;
               ``kernel=linear`` always raises (the issue's example; random search fails 1/3).
* ``branin``   Branin (2-D) where ``x1 > 5`` raises: one of its three minima lies in the failing
               region, the other two outside (random search fails 1/3).
* ``diverge``  the mixed space of bench/optimize.py (``lr``, ``layers``, ``opt``, ``dropout``) whose
               objective is NaN for ``lr > 1e-2``, one decade above the optimum at ``lr = 1e-3``
               (random search fails 1/4).

Each study runs in this process: :class:`pytest_exp.study.study.Study` over the skopt backend with
the plugin's default settings and ``--exp-seed S``, asked and told one trial at a time, as the
proposer does in a sequential pytest run (``--trials`` trials, seeds ``0..--seeds-1``), once per
number of random initial points in ``--initial-points`` (10, the default, and 3: the fewer there
are, the earlier failures steer the model). Methods:

* ``new``     the package's failure rule (:meth:`Study.failure_value`);
* ``old``     the rule before issue 15, kept here only: a failure is told the worst success so far;
* ``random``  random search (``surrogate="random"``), which never learns from failures.

Prints per function and method the median over seeds of the share of failed trials and of the
regret (best successful value minus the feasible optimum), the failed trials per seed, and the
verdict against the target: the new rule's median share of failed trials is at most random
search's, on every function and every number of initial points.

    python bench/failing.py                  # 11 seeds x 25 trials, initial points 10 and 3 (~3 min)
    python bench/failing.py --quick          # 3 seeds x 20 trials (~1 min), a smoke run
    python bench/failing.py --functions kernel --seeds 5
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from harness import fmt, table

import pytest_exp
from pytest_exp.space import Space
from pytest_exp.study import skopt as backend
from pytest_exp.study.study import Study
from pytest_exp.trial import Objective

METHODS = ("new", "old", "random")
LABELS = {"new": "new rule", "old": "old rule (worst)", "random": "random search"}


class Diverged(Exception):
    """What a trial in the failing region raises."""


def kernel(p: Mapping[str, Any]) -> float:
    if p["kernel"] == "linear":
        raise Diverged("kernel=linear")
    penalty = {"rbf": 0.0, "poly": 0.3}[p["kernel"]]
    return (math.log10(p["C"]) - 1) ** 2 + (math.log10(p["gamma"]) + 2) ** 2 + penalty


def branin(p: Mapping[str, Any]) -> float:
    x1, x2 = p["x1"], p["x2"]
    if x1 > 5:
        raise Diverged("x1 > 5")
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def diverge(p: Mapping[str, Any]) -> float:
    if p["lr"] > 1e-2:
        return math.nan  # the loss blew up: recorded, and a failure for the study
    penalty = {"adam": 0.0, "sgd": 0.5, "rmsprop": 0.2}[p["opt"]]
    return (
        (math.log10(p["lr"]) + 3) ** 2
        + (p["layers"] - 3) ** 2 / 4
        + penalty
        + 0.1 * (p["dropout"] - 0.2) ** 2
    )


@dataclass(frozen=True)
class Function:
    space: dict[str, Any]
    evaluate: Callable[[Mapping[str, Any]], float]
    optimum: float  # the best value outside the failing region
    minimizer: dict[str, Any]
    failing: float  # the share of the space that fails, what random search fails on average


FUNCTIONS = {
    "kernel": Function(
        {
            "kernel": ["linear", "rbf", "poly"],
            "C": {"type": "random", "bounds": [1e-3, 1e3], "prior": "log-uniform"},
            "gamma": {"type": "random", "bounds": [1e-4, 1e1], "prior": "log-uniform"},
        },
        kernel,
        0.0,
        {"kernel": "rbf", "C": 10.0, "gamma": 0.01},
        1 / 3,
    ),
    "branin": Function(
        {"x1": {"type": "range", "bounds": [-5, 10]}, "x2": {"type": "range", "bounds": [0, 15]}},
        branin,
        5 / (4 * math.pi),
        {"x1": math.pi, "x2": 2.275},
        1 / 3,
    ),
    "diverge": Function(
        {
            "lr": {"type": "random", "bounds": [1e-5, 1e-1], "prior": "log-uniform"},
            "layers": {"type": "range", "bounds": [1, 8], "dtype": "int"},
            "opt": ["sgd", "adam", "rmsprop"],
            "dropout": {"type": "random", "bounds": [0, 0.5]},
        },
        diverge,
        0.0,
        {"lr": 1e-3, "layers": 3, "opt": "adam", "dropout": 0.2},
        1 / 4,
    ),
}


class OldRule(Study):
    """The failure rule before issue 15, for comparison only: the worst success so far (which is
    also the best while there is one success)."""

    def failure_value(self) -> float | None:
        return None if self._worst == -math.inf else self._worst


@dataclass
class Outcome:
    """One study: how many of its trials failed, and the best successful value (None if none)."""

    failed: int
    best: float | None


def run(function: str, method: str, seed: int, trials: int, initial: int) -> Outcome:
    f = FUNCTIONS[function]
    space = Space.from_dict(f.space)
    surrogate = "random" if method == "random" else "GP"
    optimizer = backend.create(space, {"seed": seed, "surrogate": surrogate, "initial_points": initial})
    kind = OldRule if method == "old" else Study
    study = kind(f"{function}-{seed}", Objective.parse("f:min"), trials, optimizer)
    failed = 0
    for i in range(trials):
        point = study.ask(i)
        try:
            value: float | None = f.evaluate(point)
        except Diverged:
            value = None
        if value is None or not math.isfinite(value):
            failed += 1
        study.tell(i, value)
    best = study.best()
    return Outcome(failed, None if best is None else best[1])


def check_functions() -> None:
    """The stated optima are the functions' values at their minimizers, inside the spaces."""
    for name, f in FUNCTIONS.items():
        value = f.evaluate(f.minimizer)
        if abs(value - f.optimum) > 1e-9:
            raise SystemExit(f"{name}: f(minimizer) = {value!r}, stated optimum {f.optimum!r}")
        for d in backend.dimensions(Space.from_dict(f.space)):
            if f.minimizer[d.name] not in d:
                raise SystemExit(f"{name}: minimizer {d.name}={f.minimizer[d.name]!r} is outside {d}")


def report(functions: Sequence[str], seeds: int, trials: int, initial: int) -> bool:
    """Runs every study with ``initial`` random initial points, prints the tables; whether the new
    rule meets the target on every function."""
    outcomes: dict[tuple[str, str], list[Outcome]] = {}
    seconds: dict[str, float] = {}
    for m in METHODS:
        start = time.perf_counter()
        for f in functions:
            outcomes[(f, m)] = [run(f, m, s, trials, initial) for s in range(seeds)]
        seconds[m] = time.perf_counter() - start

    def share(f: str, m: str) -> float:
        return statistics.median(o.failed / trials for o in outcomes[(f, m)])

    def regret(f: str, m: str) -> float:
        return statistics.median(
            math.inf if o.best is None else o.best - FUNCTIONS[f].optimum for o in outcomes[(f, m)]
        )

    print(f"{initial} random initial points{' (the default)' if initial == 10 else ''}:")
    print()
    header = ["share failed", "failing space", *(LABELS[m] for m in METHODS)]
    rows = [[f, f"{FUNCTIONS[f].failing:.3f}", *(f"{share(f, m):.3f}" for m in METHODS)] for f in functions]
    print("\n".join(table(header, rows)))
    print()
    header = ["median regret", *(LABELS[m] for m in METHODS)]
    rows = [[f, *(fmt(regret(f, m)) for m in METHODS)] for f in functions]
    print("\n".join(table(header, rows)))
    print()
    print(f"failed trials per seed (of {trials}):")
    for f in functions:
        for m in METHODS:
            print(f"  {f:<8} {LABELS[m]:<17} " + " ".join(f"{o.failed:2d}" for o in outcomes[(f, m)]))
    print(
        "seconds per method (every function and seed): " + ", ".join(f"{m} {seconds[m]:.0f}" for m in METHODS)
    )
    print("target: the new rule's median share of failed trials at most random search's")
    ok = True
    for f in functions:
        new, rnd, old = share(f, "new"), share(f, "random"), share(f, "old")
        ok = ok and new <= rnd
        print(
            f"  {f:<8} new {new:.3f} vs random {rnd:.3f}: {'OK' if new <= rnd else 'OVER'} "
            f"(old rule {old:.3f}: {'OK' if old <= rnd else 'OVER'})"
        )
    print()
    return ok


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated functions")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 11)")
    parser.add_argument("--trials", type=int, default=None, help="trials per study (default 25)")
    parser.add_argument("--initial-points", default="10,3", help="comma-separated (default 10,3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 seeds, 20 trials")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (3 if args.quick else 11)
    trials = args.trials if args.trials is not None else (20 if args.quick else 25)
    functions = [f.strip() for f in args.functions.split(",") if f.strip()]
    initials = [int(n) for n in args.initial_points.split(",") if n.strip()]
    for f in functions:
        if f not in FUNCTIONS:
            parser.error(f"unknown function {f!r} (expected some of {', '.join(FUNCTIONS)})")
    if seeds < 1 or any(not 1 <= n < trials for n in initials):
        parser.error("--seeds must be >= 1 and every --initial-points between 1 and --trials - 1")
    check_functions()

    import skopt

    print(
        f"pytest-exp failing-region benchmark: Python {platform.python_version()}, "
        f"pytest-exp {pytest_exp.__version__}, scikit-optimize {skopt.__version__}, "
        f"scikit-learn {version('scikit-learn')}, {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{trials} trials per study, seeds 0..{seeds - 1}; Study over the skopt backend in this process, "
        "default settings (GP, EI) or surrogate random; one trial at a time"
    )
    print(
        "share failed = failed trials / trials, median over seeds; failing space = the share of the "
        "space that fails (random search's expectation); regret = best successful value minus the "
        "best value outside the failing region, median over seeds"
    )
    print()
    started = time.perf_counter()
    ok = all([report(functions, seeds, trials, n) for n in initials])
    print(f"target on every function and number of initial points: {'OK' if ok else 'OVER'}")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
