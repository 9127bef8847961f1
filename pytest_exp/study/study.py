"""One test's optimization study, whatever its backend: which point each trial slot got, what
each finished slot scored, and what a failure teaches the optimizer."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import NamedTuple

from pytest_exp.study import pruning
from pytest_exp.study.backend import Optimizer
from pytest_exp.trial import Objective, Point, TrialRecord


def objective_value(record: TrialRecord) -> float | None:
    """What the optimizer learns from a finished trial: its objective, or None for a failure."""
    if record.status != "passed" or not record.objective:
        return None
    value = record.last().get(Objective.parse(record.objective).name)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def objective_curve(record: TrialRecord) -> list[tuple[int, float]]:
    """The (step, value) pairs of a trial's objective, when it was recorded with ``step=``."""
    if not record.objective:
        return []
    name = Objective.parse(record.objective).name
    return [
        (s, float(v)) for s, v in zip(record.steps.get(name, ()), record.metrics.get(name, ()), strict=False)
    ]


class Finished(NamedTuple):
    """A finished trial as a study learns it: its objective (None when it failed) and, for a
    pruned one, the curve it was pruned on."""

    number: int
    point: Point
    value: float | None
    curve: Sequence[tuple[int, float]] = ()
    pruned: bool = False


def _pruned(told: Finished) -> bool:
    # Pruned on a curve: a pruner needs one, and the optimizer is told its last value.
    return told.pruned and bool(told.curve)


def _success(told: Finished) -> bool:
    return not _pruned(told) and told.value is not None and math.isfinite(told.value)


class Study:
    """Hands out points for trial slots and learns from their results.

    Failure policy: a trial that fails, crashes or reports a NaN/infinite objective is told a value
    worse than every success so far (:meth:`failure_value`), so the optimizer steers away from
    failing regions. Telling the worst success instead made a failure as good as the best while
    there was one success, and drew the optimizer into the failing region. Failures wait for a
    first success, which gives the penalty its scale.

    Pruning: the study keeps the objective's curve of every trial (finished ones, and the latest
    a running one sent), which its pruner judges a running trial against. A pruned trial is told
    the last value of its curve, as Optuna tells one, unless the optimizer has
    ``tell_pruned(point, curve)`` of its own.
    """

    def __init__(
        self,
        key: str,
        objective: Objective | None,
        budget: int,
        optimizer: Optimizer,
        pruner: str = "none",
        prune_warmup: int = 0,
    ) -> None:
        self.key = key
        self.objective = objective
        self.budget = budget
        self.optimizer = optimizer
        self.pruner_name = pruner
        maximized = objective is not None and objective.direction == "max"
        self.pruner = pruning.create(pruner, sign=-1.0 if maximized else 1.0, warmup=prune_warmup)
        self.assigned: dict[int, Point] = {}
        self.finished: dict[int, float | None] = {}
        self.pruned: set[int] = set()
        self.curves: dict[int, pruning.Known] = {}  # signed to minimize
        self._best = math.inf  # of the successes told, signed to minimize; failures never move them
        self._worst = -math.inf
        self._failed: list[Point] = []  # not told yet: no success so far

    def replay(self, history: Sequence[tuple[int, Point, float | None]] | Sequence[Finished]) -> None:
        """Earlier trials of this study (index, params, objective or None when failed, and for a
        pruned one its curve), in order."""
        told = [Finished(*entry) for entry in history]
        good = [(t.point, t.value) for t in told if t.value is not None and _success(t)]
        self._tell_successes([p for p, _ in good], [self._sign(y) for _, y in good])
        for t in told:
            self.assigned[t.number] = t.point
            self._settle(t)
        self._tell_failures()

    def ask(self, index: int) -> Point:
        if index in self.assigned:  # a retried request, or a slot replaced after a crash
            return self.assigned[index]
        pending = [p for i, p in self.assigned.items() if i not in self.finished]
        point = self.optimizer.ask(pending)
        self.assigned[index] = point
        return point

    def tell(
        self,
        index: int,
        value: float | None,
        curve: Sequence[tuple[int, float]] = (),
        *,
        pruned: bool = False,
    ) -> None:
        if index in self.finished or index not in self.assigned:
            return
        told = Finished(index, self.assigned[index], value, curve, pruned)
        self._settle(told)
        if value is not None and _success(told):
            self._tell_successes([told.point], [self._sign(value)])
        self._tell_failures()

    def prune(self, index: int, curve: Sequence[tuple[int, float]]) -> str | None:
        """Why running trial ``index``, whose objective's curve is ``curve`` so far, should stop
        now (the pruner's reason), or None."""
        if self.pruner is None or index in self.finished:
            return None
        signed = [(s, self._sign(v)) for s, v in curve]
        self.curves[index] = pruning.Known(signed, complete=False)
        others = {i: k for i, k in self.curves.items() if i != index}
        reason = self.pruner.prune(signed, others)
        if reason is None:
            return None
        name = self.objective.name if self.objective is not None else "the objective"
        return f"pruned by the {self.pruner_name} pruner at step {curve[-1][0]}: {name} {reason}"

    def _settle(self, told: Finished) -> None:
        """Keep a finished trial's value and curve; tell a pruned one now, queue a failure (a
        success is the caller's to tell: replay tells them all in one go)."""
        self.finished[told.number] = told.value
        self._keep_curve(told)
        if _pruned(told):
            self._tell_pruned(told)
        elif not _success(told):
            self._failed.append(told.point)

    def _keep_curve(self, told: Finished) -> None:
        if told.curve:
            complete = not _pruned(told) and told.value is not None
            self.curves[told.number] = pruning.Known([(s, self._sign(v)) for s, v in told.curve], complete)
        else:
            self.curves.pop(told.number, None)  # nothing recorded with steps: nothing to judge by

    def _tell_pruned(self, told: Finished) -> None:
        self.pruned.add(told.number)
        curve = [(s, self._sign(v)) for s, v in told.curve]
        tell_pruned = getattr(self.optimizer, "tell_pruned", None)
        if tell_pruned is not None:
            tell_pruned(told.point, curve)
        else:
            self._tell_successes([told.point], [curve[-1][1]])

    def failure_value(self) -> float | None:
        """What a failure is told, signed to minimize: the worst success plus half the successes'
        range (half the worst's magnitude, or 0.5, while they are all equal); None before any
        success. Only successes count, so failures never raise the penalty for one another."""
        if self._worst == -math.inf:
            return None
        worst = self._worst
        spread = worst - self._best or abs(worst) or 1.0
        # At least the next float up (a small spread can round away on a large worst), at most the
        # largest finite float (what optimizers accept).
        return min(max(worst + spread / 2, math.nextafter(worst, math.inf)), sys.float_info.max)

    def _tell_successes(self, points: Sequence[Point], values: Sequence[float]) -> None:
        if points:
            self.optimizer.tell(points, values)
            self._best = min(self._best, *values)
            self._worst = max(self._worst, *values)

    def _sign(self, value: float) -> float:
        return -value if self.objective is not None and self.objective.direction == "max" else value

    def _tell_failures(self) -> None:
        value = self.failure_value()
        if self._failed and value is not None:
            failed, self._failed = self._failed, []
            self.optimizer.tell(failed, [value] * len(failed))

    def best(self) -> tuple[int, float] | None:
        done = [(i, y) for i, y in self.finished.items() if y is not None and math.isfinite(y)]
        if not done:
            return None
        return min(done, key=lambda iy: self._sign(iy[1]))
