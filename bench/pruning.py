"""Steps saved by ``--exp-pruner`` on a synthetic learning-curve benchmark, next to the same
study without pruning.

Each trial trains for 20 steps; its loss at step ``t`` is ``f(x) + 1 / (t + 1)`` plus noise
that decays as ``exp(-t)``, so the bad configurations are visible by about step 3 and not at
step 0. ``f`` is a bowl over two parameters in [0, 1] (minimum 0 at (0.3, 0.7)). Both studies
are real ``pytest --exp-optimize N --exp-optimizer random --exp-seed S`` runs: random search
proposes the same points whatever it is told, so the runs try the same configurations and
differ only by what the pruner stops. Per seed: the steps run (from the store), the best final
loss among the trials that finished, and the wall time.

Target: the median pruner saves at least 40% of the steps, with the same best value as no
pruning (on every seed). The pruners run with ``--exp-prune-warmup 3`` (``--warmup``): the
noise of the first steps would otherwise prune good trials.

    python bench/pruning.py                      # 11 seeds x 40 trials
    python bench/pruning.py --seeds 3 --trials 20
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import write_project

from pytest_exp.store import Store

STEPS = 20
TARGET_SAVED = 0.40
MODULE = f"""\
import math, random

import pytest


@pytest.mark.space(
    {{"x1": {{"type": "range", "bounds": [0.0, 1.0]}}, "x2": {{"type": "range", "bounds": [0.0, 1.0]}}}},
    objective="loss:min",
)
def test_train(x1, x2, record_metric, exp_trial):
    final = (x1 - 0.3) ** 2 + (x2 - 0.7) ** 2
    noise = random.Random(f"{{x1}},{{x2}}")
    for step in range({STEPS}):
        loss = final + 1 / (step + 1) + noise.uniform(-0.5, 0.5) * math.exp(-step)
        record_metric("loss", loss, step=step)
        exp_trial.prune_if_needed()
"""


def study(directory: Path, seed: int, trials: int, pruner: str, warmup: int) -> dict[str, float]:
    store = directory / f"store-{pruner}-{seed}"
    args = ["--exp-optimize", str(trials), "--exp-optimizer", "random", "--exp-seed", str(seed)]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--exp-store", str(store)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, *args, "--exp-pruner", pruner, "--exp-prune-warmup", str(warmup)],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{pruner} seed {seed}: exited {done.returncode}:\n{done.stdout[-3000:]}")
    with Store.open_existing(store) as s:
        records = [t for run in s.runs() for t in s.trials(run.id)]
    if len(records) != trials:
        raise SystemExit(f"{pruner} seed {seed}: {len(records)} trials stored, expected {trials}")
    finished = [r.metrics["loss"][-1] for r in records if r.status == "passed"]
    steps = sum(len(r.steps["loss"]) for r in records)
    return {"steps": steps, "best": min(finished), "wall": wall, "pruned": trials - len(finished)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=11)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--pruners", default="median,halving")
    parser.add_argument("--warmup", type=int, default=3, help="--exp-prune-warmup (default 3)")
    options = parser.parse_args()
    pruners = options.pruners.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_project(Path(tmp), "project", MODULE)
        rows = []
        for seed in range(options.seeds):
            anchor = study(directory, seed, options.trials, "none", 0)
            by = {p: study(directory, seed, options.trials, p, options.warmup) for p in pruners}
            rows.append((seed, anchor, by))
    print(
        f"{options.trials} trials of {STEPS} steps, random search, seeds 0..{options.seeds - 1}, "
        f"--exp-prune-warmup {options.warmup}"
    )
    print("seed  " + "  ".join(f"{p:>8} saved  pruned  same best  wall" for p in pruners))
    for seed, anchor, by in rows:
        cells = []
        for p in pruners:
            r = by[p]
            saved = 1 - r["steps"] / anchor["steps"]
            same = "yes" if r["best"] == anchor["best"] else f"no ({r['best']:.4g} vs {anchor['best']:.4g})"
            cells.append(f"{saved:14.1%}  {r['pruned']:6.0f}  {same:>9}  {r['wall'] / anchor['wall']:.2f}x")
        print(f"{seed:4d}  " + "  ".join(cells))
    for p in pruners:
        saved = statistics.median(1 - by[p]["steps"] / anchor["steps"] for _, anchor, by in rows)
        same = sum(by[p]["best"] == anchor["best"] for _, anchor, by in rows)
        wall = statistics.median(by[p]["wall"] / anchor["wall"] for _, anchor, by in rows)
        ok = saved >= TARGET_SAVED and same == len(rows)
        print(
            f"{p}: median {saved:.1%} of steps saved (target >= {TARGET_SAVED:.0%}), same best value on "
            f"{same} of {len(rows)} seeds, wall time {wall:.2f}x no pruning: {'OK' if ok else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
