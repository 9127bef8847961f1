"""Optimization quality and cost of ``pytest --exp-optimize`` next to scikit-optimize called directly.

Four parts, each selected with ``--parts`` (all by default):

* ``quality``  Branin (2-D), Hartmann6 (6-D), Rosenbrock-4 (4-D) and a mixed space (log-uniform
               ``lr``, int ``layers``, categorical ``opt``, uniform ``dropout``), ``--trials``
               evaluations each, seeds ``0..--seeds-1``, four methods:
               (a) ``plugin``: a real ``pytest --exp-optimize N --exp-seed S`` run (fresh store);
               (b) ``direct``: ``skopt.Optimizer(dims, **OptSettings(seed=S).skopt_kwargs(dims))`` in
                   an ask/tell loop, ``dims = dimensions(Space.from_dict(space))``; it must evaluate
                   the very points (a) evaluated, trial for trial (compared by ``repr``);
               (c) ``skopt defaults``: ``skopt.Optimizer(dims, random_state=S)`` (GP, gp_hedge,
                   acq_optimizer "auto", 10 random initial points), the same loop;
               (d) ``random``: the plugin with ``--exp-surrogate random``;
               (e)-(i) ``optuna:tpe``, ``optuna:cmaes``, ``optuna:qmc``, ``optuna:random``,
                   ``optuna:gp``: the plugin with ``--exp-optimizer optuna:VARIANT`` (real pytest
                   runs; ``optuna:gp`` only where torch is importable, else listed as skipped).
               ``--methods`` picks some (comma-separated; default every one that can run here);
               ``plugin[FLAGS]`` is the plugin with extra flags, e.g.
               ``plugin[--exp-acq gp_hedge --exp-initial-points 5]``, to try other settings.
               Prints the median simple regret (best value found minus the known optimum) per
               function and method, each method's median regret divided by skopt defaults' median
               regret with the geometric mean over functions, the seeds on which each method beats
               skopt defaults, and the wall time of one study per method.
* ``overhead`` ``pytest --exp-optimize N`` on Branin (costs nothing; sequential) next to a bare
               ``skopt`` ask/tell loop with the same settings written out by hand, both as the wall
               time of the whole command in a fresh interpreter; a one-test pytest run is shown for
               scale. One discarded warm-up round, then ``--repeats`` interleaved rounds; medians.
* ``parallel`` 24 trials whose test sleeps 0.5 s (and records Branin), ``-n 2`` next to sequential;
               ``--repeats`` interleaved rounds, median wall time, speedup.
* ``cpu``      the proposer's CPU against the trials': a study of 20 trials whose test fits a
               scikit-learn gradient-boosting model (real CPU work, one thread), sequential and
               under ``-n 2`` on this machine's 2 cores, next to the same test over a 20-point
               grid (no proposer). Reported: the summed trial time (the store's durations),
               median over ``--repeats`` interleaved rounds. Target: under ``-n 2`` the study's
               summed trial time stays within 1.2x of the sequential study's, as a grid's does.

Every measurement is a fresh interpreter started with ``subprocess``; the quality runs go one at a
time by default (``--jobs 2`` runs two at a time: results are the same, wall times are not
comparable). Children run with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` etc., ``--blas-threads``):
on this 2-core machine OpenBLAS's own threads made a GP round several times slower.

Targets: the plugin evaluates the same points as direct skopt (every function, every seed); the
plugin's defaults beat skopt's defaults (geo-mean ratio < 1); ``pytest --exp-optimize`` costs at
most 1.2x the bare loop.

    python bench/optimize.py                 # 5 seeds x 50 trials, every part (~15 min)
    python bench/optimize.py --quick         # 2 seeds x 20 trials, 1 round (~2 min)
    python bench/optimize.py --parts quality --functions branin,mixed --seeds 3
    python bench/optimize.py --parts quality --methods defaults,plugin,optuna:tpe --seeds 11
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
from harness import fmt, table

import pytest_exp
from pytest_exp.space import Space
from pytest_exp.store import Store
from pytest_exp.study.skopt import OptSettings, dimensions

OVERHEAD_TARGET = 1.2
TINY = 1e-12  # regret floor for ratios: a regret of exactly 0 would make them 0 or infinite
PYTEST = ("-p", "no:cacheprovider", "-q")
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
FUNCTIONS = ("branin", "hartmann6", "rosenbrock4", "mixed")
SKOPT_METHODS = ("plugin", "direct", "defaults", "random")
OPTUNA_METHODS = ("optuna:tpe", "optuna:cmaes", "optuna:qmc", "optuna:random", "optuna:gp")
METHODS = SKOPT_METHODS + OPTUNA_METHODS
LABELS = {
    "plugin": "(a) plugin",
    "direct": "(b) direct skopt",
    "defaults": "(c) skopt defaults",
    "random": "(d) random",
    "optuna:tpe": "(e) optuna:tpe",
    "optuna:cmaes": "(f) optuna:cmaes",
    "optuna:qmc": "(g) optuna:qmc",
    "optuna:random": "(h) optuna:random",
    "optuna:gp": "(i) optuna:gp",
}
NO_HYPOTHESIS = "no:hypothesispytest"
PARALLEL_TRIALS = 24
SLEEP_S = 0.5

# The objectives, written to the work directory as ``bench_objectives.py``: the test modules and
# the direct loops import this one file, so both sides evaluate with the same code.
OBJECTIVES = textwrap.dedent(
    '''\
    """Benchmark objectives: each takes a dict of plain parameter values and returns a float."""

    import math

    SPACES = {
        "branin": {
            "x1": {"type": "range", "bounds": [-5, 10]},
            "x2": {"type": "range", "bounds": [0, 15]},
        },
        "hartmann6": {f"x{i}": {"type": "range", "bounds": [0, 1]} for i in range(1, 7)},
        "rosenbrock4": {f"x{i}": {"type": "range", "bounds": [-2.048, 2.048]} for i in range(1, 5)},
        "mixed": {
            "lr": {"type": "random", "bounds": [1e-5, 1e-1], "prior": "log-uniform"},
            "layers": {"type": "range", "bounds": [1, 8], "dtype": "int"},
            "opt": ["sgd", "adam", "rmsprop"],
            "dropout": {"type": "random", "bounds": [0, 0.5]},
        },
    }

    # Known minima: Branin 5/(4 pi) at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475); Hartmann6 at
    # (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573); Rosenbrock 0 at (1, 1, 1, 1);
    # mixed 0 at lr=1e-3, layers=3, opt=adam, dropout=0.2 (all inside the space).
    OPTIMA = {"branin": 5 / (4 * math.pi), "hartmann6": -3.32236801141551, "rosenbrock4": 0.0, "mixed": 0.0}

    H_ALPHA = (1.0, 1.2, 3.0, 3.2)
    H_A = (
        (10, 3, 17, 3.5, 1.7, 8),
        (0.05, 10, 17, 0.1, 8, 14),
        (3, 3.5, 1.7, 10, 17, 8),
        (17, 8, 0.05, 10, 0.1, 14),
    )
    H_P = (
        (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
        (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
        (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
        (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
    )
    PENALTY = {"adam": 0.0, "sgd": 0.5, "rmsprop": 0.2}


    def branin(p):
        x1, x2 = p["x1"], p["x2"]
        b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
        return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


    def hartmann6(p):
        x = [p[f"x{i}"] for i in range(1, 7)]
        return -sum(
            alpha * math.exp(-sum(a * (xi - q) ** 2 for a, xi, q in zip(row, x, prow)))
            for alpha, row, prow in zip(H_ALPHA, H_A, H_P)
        )


    def rosenbrock4(p):
        x = [p[f"x{i}"] for i in range(1, 5)]
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


    def mixed(p):
        return (
            (math.log10(p["lr"]) + 3) ** 2
            + (p["layers"] - 3) ** 2 / 4
            + PENALTY[p["opt"]]
            + 0.1 * (p["dropout"] - 0.2) ** 2
        )


    FUNCTIONS = {"branin": branin, "hartmann6": hartmann6, "rosenbrock4": rosenbrock4, "mixed": mixed}


    def evaluate(name, params):
        return float(FUNCTIONS[name](params))
    '''
)

TEST_MODULE = textwrap.dedent(
    """\
    import pytest

    from bench_objectives import SPACES, evaluate


    @pytest.mark.space(SPACES[{name!r}], objective="f:min")
    def test_{name}(exp_params, record_metric):
        record_metric("f", evaluate({name!r}, exp_params))
    """
)

SLEEP_MODULE = textwrap.dedent(
    f"""\
    import time

    import pytest

    from bench_objectives import SPACES, evaluate


    @pytest.mark.space(SPACES["branin"], objective="f:min")
    def test_sleep(exp_params, record_metric):
        time.sleep({SLEEP_S})
        record_metric("f", evaluate("branin", exp_params))
    """
)

CPU_TRIALS = 20
CPU_MODULE = textwrap.dedent(
    """\
    import pytest
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor

    X, Y = make_regression(n_samples=2000, n_features=20, noise=5.0, random_state=0)
    SPACE = {
        "depth": {"type": "range", "bounds": [2, 5], "dtype": "int"},
        "lr": {"type": "random", "bounds": [0.02, 0.3], "prior": "log-uniform"},
    }
    GRID = {"depth": [2, 3, 4, 5], "lr": [0.02, 0.05, 0.1, 0.2, 0.3]}


    def fit(depth, lr, record_metric):
        model = GradientBoostingRegressor(n_estimators=60, max_depth=depth, learning_rate=lr, random_state=0)
        model.fit(X[:1500], Y[:1500])
        record_metric("f", float(((model.predict(X[1500:]) - Y[1500:]) ** 2).mean()))


    @pytest.mark.space(SPACE, objective="f:min")
    def test_study(depth, lr, record_metric):
        fit(depth, lr, record_metric)


    @pytest.mark.space(GRID, objective="f:min")
    def test_grid(depth, lr, record_metric):
        fit(depth, lr, record_metric)
    """
)

PLAIN_SLEEP_MODULE = textwrap.dedent(
    f"""\
    import time

    import pytest


    @pytest.mark.parametrize("i", range({PARALLEL_TRIALS}))
    def test_plain_sleep(i):
        time.sleep({SLEEP_S})
    """
)

# (b) and (c): an ask/tell loop in a fresh interpreter. argv: result path, JSON spec.
DIRECT_CHILD = textwrap.dedent(
    """
    import json, os, sys, time, warnings

    t0 = time.perf_counter()
    sys.path.insert(0, os.getcwd())
    import skopt

    from bench_objectives import SPACES, evaluate
    from pytest_exp.study.skopt import OptSettings, dimensions
    from pytest_exp.space import Space

    spec = json.loads(sys.argv[2])
    dims = dimensions(Space.from_dict(SPACES[spec["function"]]))
    names = [d.name for d in dims]
    if spec["method"] == "direct":
        kwargs = OptSettings(seed=spec["seed"]).skopt_kwargs(dims)
    else:
        kwargs = {"random_state": spec["seed"]}
    warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
    opt = skopt.Optimizer(dims, **kwargs)
    t1 = time.perf_counter()
    points, ys = [], []
    for _ in range(spec["trials"]):
        x = opt.ask()
        p = {n: v.item() if type(v).__module__ == "numpy" else v for n, v in zip(names, x)}
        y = evaluate(spec["function"], p)
        opt.tell(x, y)
        points.append(p)
        ys.append(y)
    t2 = time.perf_counter()
    with open(sys.argv[1], "w") as f:
        json.dump({"points": points, "ys": ys, "setup_s": t1 - t0, "loop_s": t2 - t1}, f)
    """
)

# The overhead anchor: what a user would write by hand for Branin with the plugin's settings
# (OptSettings.skopt_kwargs spelled out). argv: result path, seed, trials.
BARE_CHILD = textwrap.dedent(
    """
    import json, os, sys, time, warnings

    sys.path.insert(0, os.getcwd())
    import skopt
    from skopt.space import Real
    from skopt.utils import cook_estimator

    from bench_objectives import branin

    seed, trials = int(sys.argv[2]), int(sys.argv[3])
    dims = [Real(-5, 10, name="x1"), Real(0, 15, name="x2")]
    warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
    opt = skopt.Optimizer(
        dims,
        base_estimator=cook_estimator("GP", space=dims, random_state=seed, n_restarts_optimizer=0),
        n_initial_points=10,
        initial_point_generator="random",
        acq_func="EI",
        acq_func_kwargs={"xi": 0.0},
        acq_optimizer="lbfgs",
        acq_optimizer_kwargs={"n_points": 1000},
        random_state=seed,
        model_queue_size=1,
    )
    t1 = time.perf_counter()
    points = []
    for _ in range(trials):
        x = opt.ask()
        p = {"x1": float(x[0]), "x2": float(x[1])}
        opt.tell(x, float(branin(p)))
        points.append(p)
    t2 = time.perf_counter()
    with open(sys.argv[1], "w") as f:
        json.dump({"points": points, "loop_s": t2 - t1}, f)
    """
)


# --------------------------------------------------------------------------- running children


@dataclass
class Outcome:
    """One run of one method: the points it evaluated (in trial order), their values, its time."""

    points: list[dict[str, Any]]
    ys: list[float]
    wall_s: float
    loop_s: float | None = None
    note: str = ""


@dataclass
class Bench:
    root: Path
    env: dict[str, str]
    counter: int = 0
    objectives: dict[str, Any] = field(default_factory=dict)

    def fresh(self, prefix: str) -> Path:
        self.counter += 1
        return self.root / "out" / f"{prefix}-{self.counter}"

    def pytest(self, args: Sequence[str], store: Path, trials: int) -> Outcome:
        """A whole ``pytest`` command; the trials come back from its store, in trial order."""
        command = [sys.executable, "-m", "pytest", *PYTEST, "--exp-store", str(store), *args]
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[2:])}: exited {done.returncode}:\n{tail}")
        with Store.open_existing(store) as s:
            records = [t for run in s.runs() for t in s.trials(run.id)]
        if sorted(r.trial for r in records if r.trial is not None) != list(range(trials)):
            raise SystemExit(f"{' '.join(command[2:])}: stored trials {[r.trial for r in records]}:\n{tail}")
        bad = [r for r in records if r.status != "passed" or "f" not in r.metrics]
        if bad:
            raise SystemExit(f"{' '.join(command[2:])}: trial {bad[0].trial} {bad[0].status}:\n{tail}")
        records.sort(key=lambda r: r.trial if r.trial is not None else -1)
        warnings = [line for line in done.stdout.splitlines() if "warning" in line.lower()]
        return Outcome(
            [r.params for r in records],
            [float(r.last()["f"]) for r in records],
            wall,
            note="; ".join(warnings),
        )

    def command(self, args: Sequence[str]) -> float:
        """The wall time of ``python ARGS`` in the work directory; it must succeed."""
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *args], cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"python {' '.join(args)}: exited {done.returncode}:\n{done.stdout[-3000:]}")
        return wall

    def child(self, code: str, args: Sequence[str]) -> tuple[dict[str, Any], float]:
        result = self.fresh("child").with_suffix(".json")
        result.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, str(result), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0 or not result.exists():
            raise SystemExit(f"child {args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        data: dict[str, Any] = json.loads(result.read_text())
        return data, wall

    def direct(self, method: str, function: str, seed: int, trials: int) -> Outcome:
        spec = {"method": method, "function": function, "seed": seed, "trials": trials}
        data, wall = self.child(DIRECT_CHILD, [json.dumps(spec)])
        return Outcome(data["points"], data["ys"], wall, data["loop_s"])

    def run(self, method: str, function: str, seed: int, trials: int) -> Outcome:
        if method in ("direct", "defaults"):
            return self.direct(method, function, seed, trials)
        args = [f"test_{function}.py", "--exp-optimize", str(trials), "--exp-seed", str(seed)]
        if method == "random":
            args += ["--exp-surrogate", "random"]
        elif method.startswith("optuna:"):
            args += ["--exp-optimizer", method]
        elif method.startswith("plugin["):
            args += shlex.split(method[len("plugin[") : -1])
        tag = "".join(c if c.isalnum() else "_" for c in method)[:40]
        return self.pytest(args, self.fresh(f"{function}-{seed}-{tag}"), trials)


def build(root: Path, blas_threads: str) -> Bench:
    (root / "pytest.ini").write_text("[pytest]\n")  # pins rootdir here, away from any project config
    (root / "bench_objectives.py").write_text(OBJECTIVES)
    for name in FUNCTIONS:
        (root / f"test_{name}.py").write_text(TEST_MODULE.format(name=name))
    (root / "test_sleep.py").write_text(SLEEP_MODULE)
    (root / "test_one.py").write_text("def test_one():\n    pass\n")
    (root / "test_plain_sleep.py").write_text(PLAIN_SLEEP_MODULE)
    (root / "test_cpu.py").write_text(CPU_MODULE)
    env = dict(os.environ)
    if blas_threads != "inherit":
        env.update(dict.fromkeys(BLAS_VARS, blas_threads))
    namespace: dict[str, Any] = {}
    exec(compile(OBJECTIVES, "bench_objectives.py", "exec"), namespace)
    bench = Bench(root, env, objectives=namespace)
    check_objectives(bench)
    return bench


def check_objectives(bench: Bench) -> None:
    """The stated optima are the functions' values at their minimizers, inside the spaces."""
    ns = bench.objectives
    evaluate, optima = ns["evaluate"], ns["OPTIMA"]
    at: dict[str, dict[str, Any]] = {
        "branin": {"x1": math.pi, "x2": 2.275},
        "hartmann6": {
            f"x{i}": v for i, v in enumerate((0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573), 1)
        },
        "rosenbrock4": {f"x{i}": 1.0 for i in range(1, 5)},
        "mixed": {"lr": 1e-3, "layers": 3, "opt": "adam", "dropout": 0.2},
    }
    for name, point in at.items():
        value = evaluate(name, point)
        if abs(value - optima[name]) > 1e-9:
            raise SystemExit(f"{name}: f(minimizer) = {value!r}, stated optimum {optima[name]!r}")
        space = Space.from_dict(ns["SPACES"][name])
        for d in dimensions(space):
            if point[d.name] not in d:
                raise SystemExit(f"{name}: minimizer {d.name}={point[d.name]!r} is outside {d}")


# --------------------------------------------------------------------------- helpers


def same_points(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> int | None:
    """The first trial whose points differ (compared by repr of each value), or None."""
    for i, (p, q) in enumerate(zip(a, b, strict=False)):
        if {k: repr(v) for k, v in p.items()} != {k: repr(v) for k, v in q.items()}:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def versions(*names: str) -> str:
    """``name version, `` for each installed one, ``no name, `` for the others."""
    out = []
    for name in names:
        try:
            out.append(f"{name} {version(name)}, ")
        except PackageNotFoundError:
            out.append(f"no {name}, ")
    return "".join(out)


def label(method: str) -> str:
    return LABELS.get(method, method)


def unavailable(method: str) -> str | None:
    """Why ``method`` cannot run in this environment (what to install), or None."""
    if method.startswith("optuna:"):
        from pytest_exp.study import optuna as backend

        return backend.missing(method.split(":", 1)[1])
    return None


def parse_methods(text: str | None) -> tuple[list[str], list[tuple[str, str]]]:
    """The methods to run and those skipped, with the reason: by default every method this
    environment can run (``optuna:gp`` needs torch); a method asked for by name must be runnable.
    ``plugin[FLAGS]`` is the plugin with extra pytest flags, e.g.
    ``plugin[--exp-acq gp_hedge --exp-initial-points 5]``."""
    if text is None:
        skipped = [(m, why) for m in METHODS if (why := unavailable(m))]
        return [m for m in METHODS if not unavailable(m)], skipped
    methods = []
    for m in (m.strip() for m in text.split(",")):
        if not m:
            continue
        custom = m.startswith("plugin[") and m.endswith("]") and len(m) > len("plugin[]")
        if m not in METHODS and not custom:
            expected = ", ".join(METHODS)
            raise ValueError(f"unknown method {m!r} (expected some of {expected}, or plugin[FLAGS])")
        why = unavailable(m)
        if why:
            raise ValueError(f"method {m} cannot run here: {why}")
        if m not in methods:
            methods.append(m)
    if not methods:
        raise ValueError("--methods names no method")
    return methods, []


def settings_note(function: str, bench: Bench, seed: int = 0) -> str:
    dims = dimensions(Space.from_dict(bench.objectives["SPACES"][function]))
    kw = OptSettings(seed=seed).skopt_kwargs(dims)
    return (
        f"{kw['acq_func']} xi={kw.get('acq_func_kwargs', {}).get('xi')}, {kw['acq_optimizer']} "
        f"n_points={kw['acq_optimizer_kwargs']['n_points']}"
    )


# --------------------------------------------------------------------------- quality


def quality(
    bench: Bench,
    functions: Sequence[str],
    seeds: int,
    trials: int,
    jobs: int,
    methods: Sequence[str],
    skipped: Sequence[tuple[str, str]] = (),
) -> None:
    optima = bench.objectives["OPTIMA"]
    tasks = [(f, s, m) for f in functions for s in range(seeds) for m in methods]
    started = time.perf_counter()
    results: dict[tuple[str, int, str], Outcome] = {}
    if jobs == 1:
        for key in tasks:
            results[key] = bench.run(key[2], key[0], key[1], trials)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {key: pool.submit(bench.run, key[2], key[0], key[1], trials) for key in tasks}
            results = {key: f.result() for key, f in futures.items()}
    seconds = time.perf_counter() - started

    regret: dict[tuple[str, str], list[float]] = {}
    for f in functions:
        for s in range(seeds):
            for m in methods:
                r = results[(f, s, m)]
                if len(r.ys) != trials:
                    raise SystemExit(f"{f} seed {s} {m}: {len(r.ys)} evaluations, expected {trials}")
                regret.setdefault((f, m), []).append(min(r.ys) - optima[f])

    # (a) and (b) must evaluate the same points, trial for trial (when both ran).
    compare = "plugin" in methods and "direct" in methods
    mismatches: list[str] = []
    same: dict[str, str] = {}
    for f in functions if compare else ():
        differing = []
        for s in range(seeds):
            a, b = results[(f, s, "plugin")], results[(f, s, "direct")]
            i = same_points(a.points, b.points)
            if i is not None:
                differing.append(s)
                pa = a.points[i] if i < len(a.points) else None
                pb = b.points[i] if i < len(b.points) else None
                mismatches.append(
                    f"  {f} seed {s}: first differing trial {i}: plugin {pa} (f={a.ys[i]!r}) "
                    f"vs direct {pb} (f={b.ys[i]!r})" + (f"; pytest printed: {a.note}" if a.note else "")
                )
            elif a.ys != b.ys:
                mismatches.append(f"  {f} seed {s}: same points but different values {a.ys} vs {b.ys}")
                differing.append(s)
        same[f] = "yes" if not differing else f"NO ({len(differing)}/{seeds})"

    how = "one at a time" if jobs == 1 else f"{jobs} at a time (wall times perturbed, results not)"
    print(f"quality: {trials} trials, seeds 0..{seeds - 1}, {len(methods)} methods, {len(tasks)} runs {how}")
    print(f"  ({seconds:.0f} s in all)")
    for m, why in skipped:
        print(f"  skipped: {label(m)}: {why}")
    print()
    first = max(18, *(len(label(m)) for m in methods))
    header = ["median regret", *functions]
    rows = [["optimum", *(fmt(optima[f]) for f in functions)]]
    rows += [[label(m), *(fmt(median(regret[(f, m)])) for f in functions)] for m in methods]
    print("\n".join(table(header, rows, first=first)))
    print()

    anchor = "defaults" in methods

    def ratio(f: str, m: str) -> float:
        return max(median(regret[(f, m)]), TINY) / max(median(regret[(f, "defaults")]), TINY)

    if anchor:
        others = [m for m in methods if m != "defaults"]
        header = ["regret / (c)'s", *functions, "geo-mean", "better on"]
        rows = []
        for m in others:
            ratios = [ratio(f, m) for f in functions]
            rows.append(
                [
                    label(m),
                    *(f"{x:.3g}x" for x in ratios),
                    f"{geomean(ratios):.3g}x",
                    f"{sum(x < 1 for x in ratios)}/{len(functions)}",
                ]
            )
        print("\n".join(table(header, rows, first=first)))
        print("  median regret / (c) skopt defaults' median regret; 'better on': functions where < 1x")
        print()

        def wins(f: str, m: str) -> int:
            return sum(a < d for a, d in zip(regret[(f, m)], regret[(f, "defaults")], strict=True))

        header = ["seeds better than (c)", *functions]
        rows = [
            [
                label(m),
                *(f"{wins(f, m)}/{seeds}" for f in functions),
            ]
            for m in others
        ]
        print("\n".join(table(header, rows, first=first)))
        print("  seeds on which the method's regret is lower than (c) skopt defaults' on the same seed")
        print()
    if "plugin" in methods:
        print("per-seed regrets, (a) plugin" + (" and (c) skopt defaults:" if anchor else ":"))
        for f in functions:
            line = f"  {f:<12} plugin " + " ".join(fmt(x) for x in regret[(f, "plugin")])
            if anchor:
                line += "   defaults " + " ".join(fmt(x) for x in regret[(f, "defaults")])
            print(line)
        print()

    header = ["wall s per study", *functions, "all (median)", "total s"]
    rows = []
    for m in methods:
        walls = {f: [results[(f, s, m)].wall_s for s in range(seeds)] for f in functions}
        every = [w for ws in walls.values() for w in ws]
        rows.append(
            [
                label(m),
                *(f"{median(walls[f]):.2f}" for f in functions),
                f"{median(every):.2f}",
                f"{sum(every):.1f}",
            ]
        )
    for m in ("direct", "defaults"):
        if m not in methods:
            continue
        loops = {f: [results[(f, s, m)].loop_s or 0.0 for s in range(seeds)] for f in functions}
        every = [x for xs in loops.values() for x in xs]
        rows.append(
            [
                f"  {m} loop only",
                *(f"{median(loops[f]):.2f}" for f in functions),
                f"{median(every):.2f}",
                f"{sum(every):.1f}",
            ]
        )
    print("\n".join(table(header, rows, first=first)))
    print(f"  median wall time of one {trials}-trial study: the whole command in a fresh interpreter")
    print("  (pytest, or python -c <loop>): start-up, imports, the optimizer and the evaluations;")
    print("  'loop only' = the ask/tell loop itself, timed inside the child")
    print()
    print(
        "plugin settings per function (OptSettings defaults): "
        + "; ".join(f"{f}: {settings_note(f, bench)}" for f in functions)
    )
    print(f"regret = best value found minus the optimum; ratios of medians, regrets floored at {TINY:g}")
    print("targets:")
    if compare:
        all_same = all(v == "yes" for v in same.values())
        print(
            "  (a) plugin evaluates the same points as (b) direct skopt: "
            + ("OK" if all_same else "FAILED")
            + " ("
            + ", ".join(f"{f} {v}" for f, v in same.items())
            + ")"
        )
    else:
        print("  (a) plugin = (b) direct skopt: not checked (--methods leaves out plugin or direct)")
    if anchor and "plugin" in methods:
        geo = geomean([ratio(f, "plugin") for f in functions])
        verdict = "OK" if geo < 1 else "OVER"
        print(f"  (a) plugin vs (c) skopt defaults, geo-mean regret ratio {geo:.3g}x (target < 1): {verdict}")
        worse = [f for f in functions if ratio(f, "plugin") >= 1]
        lost = ", ".join(f"{f} ({ratio(f, 'plugin'):.3g}x)" for f in worse)
        print(f"  (a) plugin beats (c) on every function: {'yes' if not worse else 'NO, not on ' + lost}")
    else:
        print("  (a) plugin vs (c) skopt defaults: not checked (--methods leaves out plugin or defaults)")
    if mismatches:
        print("differences between (a) and (b):")
        print("\n".join(mismatches))


# --------------------------------------------------------------------------- overhead

Measured = tuple[float, list[dict[str, Any]], float | None]  # wall s, points, loop s


def overhead(bench: Bench, trials: int, repeats: int, seed: int = 0) -> None:
    inherited = dict(os.environ)

    def plugin(*extra: str) -> Measured:
        args = ["test_branin.py", "--exp-optimize", str(trials), "--exp-seed", str(seed), *extra]
        r = bench.pytest(args, bench.fresh("overhead"), trials)
        return r.wall_s, r.points, None

    def plugin_nohyp() -> Measured:
        return plugin("-p", NO_HYPOTHESIS)

    def bare() -> Measured:
        data, wall = bench.child(BARE_CHILD, [str(seed), str(trials)])
        return wall, data["points"], data["loop_s"]

    def bare_threads() -> Measured:
        env, bench.env = bench.env, inherited
        try:
            return bare()
        finally:
            bench.env = env

    def one() -> Measured:
        return bench.command(["-m", "pytest", *PYTEST, "test_one.py"]), [], None

    def python() -> Measured:
        return bench.command(["-c", "pass"]), [], None

    variants: list[tuple[str, str, Callable[[], Measured]]] = [
        ("python", "python -c pass", python),
        ("one", "pytest, 1 plain test", one),
        ("bare", "bare skopt loop (anchor)", bare),
        ("plugin", f"pytest --exp-optimize {trials}", plugin),
    ]
    # hypothesis (a dev dependency) brings a pytest plugin that, with PYTHONDONTWRITEBYTECODE set,
    # is compiled from source in every run: most of pytest's start-up here. Shown apart.
    hypothesis = importlib.util.find_spec("hypothesis") is not None
    if hypothesis:
        variants.append(("nohyp", f"  same, -p {NO_HYPOTHESIS}", plugin_nohyp))
    if bench.env.get("OPENBLAS_NUM_THREADS") != inherited.get("OPENBLAS_NUM_THREADS"):
        variants.append(("threads", "bare loop, BLAS threads not pinned", bare_threads))
    runs: dict[str, list[Measured]] = {k: [] for k, _, _ in variants}
    started = time.perf_counter()
    for _, _, go in variants:  # warm-up round, discarded
        go()
    for r in range(repeats):
        shift = r % len(variants)
        for key, _, go in variants[shift:] + variants[:shift]:
            runs[key].append(go())
    seconds = time.perf_counter() - started

    points = [p for key in ("bare", "plugin", "nohyp", "threads") for _, p, _ in runs.get(key, [])]
    identical = all(same_points(points[0], p) is None for p in points)
    wall = {k: median([w for w, _, _ in v]) for k, v in runs.items()}
    loop = median([x for _, _, x in runs["bare"] if x is not None])
    print(
        f"overhead: Branin, {trials} trials, seed {seed}, sequential; median of {repeats} interleaved "
        f"round(s) after 1 warm-up round ({seconds:.0f} s in all)"
    )
    print()
    header = ["whole command", "wall s", "min..max", "vs anchor"]
    rows = []
    for key, label, _ in variants:
        ws = [w for w, _, _ in runs[key]]
        rows.append(
            [label, f"{wall[key]:.2f}", f"{min(ws):.2f}..{max(ws):.2f}", f"{wall[key] / wall['bare']:.3f}x"]
        )
    print("\n".join(table(header, rows, first=34)))
    print()
    startup = wall["one"] - wall["python"]
    extra = wall["plugin"] - wall["bare"]
    print(
        f"bare loop: {loop:.2f} s of ask/tell inside the child, {1000 * loop / trials:.0f} ms per round "
        f"over {trials} rounds (the first 10 are random points, no model); before the loop "
        f"{wall['bare'] - loop:.2f} s (interpreter, skopt import)"
    )
    print(
        f"plugin minus anchor: {extra:.2f} s = pytest start-up {startup:.2f} s "
        "(the 1-test run minus python -c pass) "
        f"+ {extra - startup:.2f} s, {1000 * (extra - startup) / trials:.0f} ms per trial"
    )
    print(
        f"the anchor writes the plugin's settings out by hand; same points in every anchor and plugin run: "
        f"{'yes' if identical else 'NO'}"
    )
    ratio = wall["plugin"] / wall["bare"]
    verdict = "OK" if ratio <= OVERHEAD_TARGET else "OVER"
    print(f"target: plugin / bare loop {ratio:.3f}x (target <= {OVERHEAD_TARGET:.1f}x): {verdict}")
    if hypothesis:
        print(
            f"  (without the hypothesis plugin, -p {NO_HYPOTHESIS}: {wall['nohyp'] / wall['bare']:.3f}x; "
            "not the target's command, shown to separate this environment's start-up from the plugin)"
        )


# --------------------------------------------------------------------------- parallel


def parallel(bench: Bench, repeats: int, surrogate: str, seed: int = 0) -> None:
    opt = ["--exp-optimize", str(PARALLEL_TRIALS), "--exp-seed", str(seed), "--exp-surrogate", surrogate]
    plain = ["-m", "pytest", *PYTEST, "-p", "no:exp", "test_plain_sleep.py"]
    outcomes: list[Outcome] = []

    def study(*extra: str) -> float:
        outcome = bench.pytest(["test_sleep.py", *opt, *extra], bench.fresh("parallel"), PARALLEL_TRIALS)
        outcomes.append(outcome)
        return outcome.wall_s

    variants: list[tuple[str, str, Callable[[], float]]] = [
        ("plain", "plain parametrize, sequential", lambda: bench.command(plain)),
        ("plain2", "plain parametrize, -n 2", lambda: bench.command([*plain, "-n", "2"])),
        ("seq", "plugin, sequential", study),
        ("n2", "plugin, -n 2", lambda: study("-n", "2")),
    ]
    runs: dict[str, list[float]] = {k: [] for k, _, _ in variants}
    started = time.perf_counter()
    for r in range(repeats):
        shift = r % len(variants)
        for key, _, go in variants[shift:] + variants[:shift]:
            runs[key].append(go())
    seconds = time.perf_counter() - started
    for o in outcomes:
        distinct = {json.dumps(p, sort_keys=True) for p in o.points}
        if len(distinct) != PARALLEL_TRIALS:
            raise SystemExit(f"parallel: {len(distinct)} distinct points of {PARALLEL_TRIALS}")
    wall = {k: median(v) for k, v in runs.items()}
    sleep = PARALLEL_TRIALS * SLEEP_S
    print(
        f"parallel: {PARALLEL_TRIALS} tests sleeping {SLEEP_S} s each; the study records Branin, surrogate "
        f"{surrogate}, other settings the plugin's defaults, seed {seed}"
    )
    print(
        f"  median of {repeats} interleaved round(s) ({seconds:.0f} s in all); anchor: plain parametrize "
        f"over range({PARALLEL_TRIALS}), -p no:exp"
    )
    print()
    header = ["whole command", "wall s", "min..max", "speedup", "wall - sleep s"]
    rows = []
    for key, label, _ in variants:
        ws = runs[key]
        seq = wall["plain"] if key.startswith("plain") else wall["seq"]
        slept = sleep / 2 if key.endswith("2") else sleep
        rows.append(
            [
                label,
                f"{wall[key]:.2f}",
                f"{min(ws):.2f}..{max(ws):.2f}",
                f"{seq / wall[key]:.2f}x",
                f"{wall[key] - slept:.2f}",
            ]
        )
    print("\n".join(table(header, rows, first=30)))
    print()
    print(
        f"sleep alone: {sleep:.0f} s sequential, {sleep / 2:.0f} s on 2 workers; 'wall - sleep' = start-up, "
        "optimizer and xdist cost"
    )
    print("every plugin run: all trials passed, distinct points")
    print(
        f"speedup with -n 2: plugin {wall['seq'] / wall['n2']:.2f}x, plain parametrize "
        f"{wall['plain'] / wall['plain2']:.2f}x (the sleeps alone would give 2x)"
    )


def cpu(bench: Bench, repeats: int) -> None:
    """The summed trial time of a study and of a grid, sequential and under -n 2."""

    def fit_s(args: Sequence[str], trials: int) -> float:
        store = bench.fresh("cpu")
        command = [sys.executable, "-m", "pytest", *PYTEST, "--exp-store", str(store), "test_cpu.py", *args]
        done = subprocess.run(
            command, cwd=bench.root, env=bench.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[2:])}: exited {done.returncode}:\n{done.stdout[-3000:]}")
        with Store.open_existing(store) as s:
            records = [t for run in s.runs() for t in s.trials(run.id)]
        if len(records) != trials or {r.status for r in records} != {"passed"}:
            raise SystemExit(
                f"{' '.join(command[2:])}: {len(records)} trials, {sorted({r.status for r in records})}"
            )
        return sum(float(r.duration or 0.0) for r in records)

    study = ["-k", "test_study", "--exp-optimize", str(CPU_TRIALS), "--exp-seed", "0"]
    grid = ["-k", "test_grid"]
    variants: list[tuple[str, str, Callable[[], float]]] = [
        ("grid", "grid, sequential", lambda: fit_s(grid, CPU_TRIALS)),
        ("grid2", "grid, -n 2", lambda: fit_s([*grid, "-n", "2"], CPU_TRIALS)),
        ("study", "study, sequential", lambda: fit_s(study, CPU_TRIALS)),
        ("study2", "study, -n 2", lambda: fit_s([*study, "-n", "2"], CPU_TRIALS)),
    ]
    runs: dict[str, list[float]] = {k: [] for k, _, _ in variants}
    for r in range(repeats):
        shift = r % len(variants)
        for key, _, go in variants[shift:] + variants[:shift]:
            runs[key].append(go())
    summed = {k: median(v) for k, v in runs.items()}
    print(
        f"cpu: {CPU_TRIALS} trials fitting a gradient-boosting model each (one thread); summed trial time "
        f"from the store, median of {repeats} interleaved round(s); the study with the plugin's defaults"
    )
    rows = [
        [label, f"{summed[k]:.2f}", f"{min(runs[k]):.2f}..{max(runs[k]):.2f}"] for k, label, _ in variants
    ]
    print("\n".join(table(["run", "summed trial s", "min..max"], rows, first=20)))
    grid_ratio, study_ratio = summed["grid2"] / summed["grid"], summed["study2"] / summed["study"]
    verdict = "OK" if study_ratio <= 1.2 else "OVER"
    print(
        f"-n 2 over sequential: grid {grid_ratio:.2f}x, study {study_ratio:.2f}x (target <= 1.2x: {verdict})"
    )


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--parts", default="quality,overhead,parallel,cpu", help="comma-separated parts to run"
    )
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="quality: comma-separated functions")
    parser.add_argument(
        "--methods",
        default=None,
        help="quality: comma-separated methods (default: every one this environment can run): "
        f"{', '.join(METHODS)}, or plugin[FLAGS], the plugin with extra pytest flags",
    )
    parser.add_argument("--seeds", type=int, default=None, help="quality: seeds 0..N-1 (default 5)")
    parser.add_argument("--trials", type=int, default=None, help="trials per study (default 50)")
    parser.add_argument("--repeats", type=int, default=None, help="overhead, parallel: rounds (default 3)")
    parser.add_argument(
        "--jobs", type=int, default=1, choices=(1, 2), help="quality runs at a time (default 1)"
    )
    parser.add_argument("--parallel-surrogate", default="GP", choices=("GP", "RF", "ET"))
    parser.add_argument(
        "--blas-threads", default="1", help="BLAS threads in the children, or 'inherit' (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, 20 trials, 1 round")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    trials = args.trials if args.trials is not None else (20 if args.quick else 50)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    functions = [f.strip() for f in args.functions.split(",") if f.strip()]
    for p in parts:
        if p not in ("quality", "overhead", "parallel", "cpu"):
            parser.error(f"unknown part {p!r}")
    for f in functions:
        if f not in FUNCTIONS:
            parser.error(f"unknown function {f!r} (expected some of {', '.join(FUNCTIONS)})")
    try:
        methods, skipped = parse_methods(args.methods)
    except ValueError as e:
        parser.error(str(e))
    if seeds < 1 or trials < 11 or repeats < 1:
        parser.error("--seeds and --repeats must be >= 1 and --trials > 10 (10 initial points)")

    import skopt

    started = time.perf_counter()
    print(
        f"pytest-exp optimization benchmark: parts {', '.join(parts)}; Python {platform.python_version()}, "
        f"pytest {pytest.__version__}, pytest-exp {pytest_exp.__version__}, "
        f"scikit-optimize {skopt.__version__}, "
        f"scikit-learn {version('scikit-learn')}, "
        f"{versions('optuna', 'torch')}"
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs"
    )
    blas = "inherited" if args.blas_threads == "inherit" else f"{args.blas_threads} ({', '.join(BLAS_VARS)})"
    print(
        f"every run is a fresh interpreter; pytest runs: pytest {' '.join(PYTEST)} --exp-store <fresh dir>; "
        f"BLAS threads {blas}"
    )
    print()
    with tempfile.TemporaryDirectory(prefix="exp-opt-bench-") as tmp:
        bench = build(Path(tmp), args.blas_threads)
        if "quality" in parts:
            quality(bench, functions, seeds, trials, args.jobs, methods, skipped)
            print()
        if "overhead" in parts:
            overhead(bench, trials, repeats)
            print()
        if "parallel" in parts:
            parallel(bench, repeats, args.parallel_surrogate)
            print()
        if "cpu" in parts:
            cpu(bench, repeats)
            print()
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
