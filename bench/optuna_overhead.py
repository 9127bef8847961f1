"""Per-proposal time of the Optuna backends next to a direct Optuna ask-and-tell loop (issue 16).

For each sampler, a study over a 3-parameter space (two real, one categorical) is driven to 60
trials twice in this process: through ``pytest_exp.study.optuna`` and as a direct loop with the
same sampler and seed. Reported: the median time of one ask around the 50th observed point, for
both, and their ratio (target: at most 1.2x), median over ``--repeats`` rounds; for ``gp``
(where torch is installed, run with one torch thread in both) also its own target of 50 ms.

    python bench/optuna_overhead.py [--repeats 3] [--variants tpe,gp]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import optuna

from pytest_exp.space import Space
from pytest_exp.study import optuna as backend

SPACE = Space.from_dict(
    {
        "x": {"type": "range", "bounds": [-5, 5]},
        "y": {"type": "range", "bounds": [-5, 5]},
        "k": ["a", "b", "c"],
    }
)
SAMPLERS: dict[str, Callable[[], Any]] = {
    "tpe": lambda: optuna.samplers.TPESampler(seed=0, constant_liar=True),  # experimental in 4.0: warns
    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=0, warn_independent_sampling=False),
    "random": lambda: optuna.samplers.RandomSampler(seed=0),
    "qmc": lambda: optuna.samplers.QMCSampler(seed=0, scramble=True, warn_independent_sampling=False),
    "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=0),
    "gp": lambda: optuna.samplers.GPSampler(seed=0),  # with torch only; one torch thread, as ours
}
TRIALS, AROUND = 60, slice(45, 55)


def value(p: dict[str, Any]) -> float:
    return float((p["x"] - 1) ** 2 + (p["y"] + 2) ** 2 + (p["k"] == "b"))


def ours(variant: str) -> float:
    opt = backend.create(SPACE, {"seed": 0, "variant": variant})
    times = []
    for _ in range(TRIALS):
        t = time.perf_counter()
        point = opt.ask()
        times.append(time.perf_counter() - t)
        opt.tell([point], [value(point)])
    return statistics.median(times[AROUND])


def direct(variant: str) -> float:
    study = optuna.create_study(sampler=SAMPLERS[variant]())
    dists = backend.distributions(SPACE)
    times = []
    for _ in range(TRIALS):
        t = time.perf_counter()
        trial = study.ask(dists)
        times.append(time.perf_counter() - t)
        study.tell(trial, value({**trial.params, "k": ["a", "b", "c"][trial.params["k"]]}))
    return statistics.median(times[AROUND])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(SAMPLERS))
    args = parser.parse_args()
    variants = args.variants.split(",")
    if "gp" in variants and backend.missing("gp") is not None:
        print("gp left out: torch is not installed")
        variants.remove("gp")
    else:
        import torch

        torch.set_num_threads(1)  # what the backend sets around its calls
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"optuna {optuna.__version__}; ask time around the 50th observed point, median of {args.repeats}")
    for variant in variants:
        rounds = [(ours(variant), direct(variant)) for _ in range(args.repeats)]
        o = statistics.median(r[0] for r in rounds)
        d = statistics.median(r[1] for r in rounds)
        verdict = "OK" if o / d <= 1.2 else "OVER"
        line = f"  {variant:<7} ours {o * 1e3:6.2f} ms  direct {d * 1e3:6.2f} ms  {o / d:.2f}x"
        line += f"  (1.2x: {verdict})"
        if variant == "gp":
            line += f"  (50 ms: {'OK' if o <= 0.05 else 'OVER'})"
        print(line)


if __name__ == "__main__":
    main()
