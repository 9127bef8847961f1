"""One test's optimization study, whatever its backend: which point each trial slot got, what
each finished slot scored, and what a failure teaches the optimizer."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import NamedTuple

from pytest_exp import pareto
from pytest_exp.study import pruning
from pytest_exp.study.backend import Optimizer
from pytest_exp.trial import Objective, Point, TrialRecord, objectives, primary

Value = float | tuple[float, ...]
"""A trial's objective: one number, or one per objective of a multi-objective study."""


def objective_value(record: TrialRecord) -> Value | None:
    """What the optimizer learns from a finished trial: its objective (a tuple of them in a
    multi-objective study), or None for a failure."""
    if record.status != "passed" or not record.objective:
        return None
    last = record.last()
    values = []
    for o in objectives(record.objective):
        value = last.get(o.name)
        if value is None or not math.isfinite(float(value)):
            return None
        values.append(float(value))
    return values[0] if len(values) == 1 else tuple(values)


def finite(value: Value | None) -> bool:
    if value is None:
        return False
    return all(map(math.isfinite, value)) if isinstance(value, tuple) else math.isfinite(value)


def objective_curve(record: TrialRecord) -> list[tuple[int, float]]:
    """The (step, value) pairs of a trial's objective, when it was recorded with ``step=``."""
    if not record.objective:
        return []
    name = primary(record.objective).name
    return [
        (s, float(v)) for s, v in zip(record.steps.get(name, ()), record.metrics.get(name, ()), strict=False)
    ]


class Finished(NamedTuple):
    """A finished trial as a study learns it: its objective (None when it failed) and, for a
    pruned one, the curve it was pruned on."""

    number: int
    point: Point
    value: Value | None
    curve: Sequence[tuple[int, float]] = ()
    pruned: bool = False


def _pruned(told: Finished) -> bool:
    # Pruned on a curve: a pruner needs one, and the optimizer is told its last value.
    return told.pruned and bool(told.curve)


def _success(told: Finished) -> bool:
    return not _pruned(told) and finite(told.value)


class Study:
    """Hands out points for trial slots and learns from their results.

    Failure policy: a trial that fails, crashes or reports a NaN/infinite objective is told a value
    worse than every success so far (:meth:`failure_value`), so the optimizer steers away from
    failing regions. Telling the worst success instead made a failure as good as the best while
    there was one success, and drew the optimizer into the failing region. Failures wait for a
    first success, which gives the penalty its scale. In a multi-objective study (``objectives``
    names several) each objective gets its own penalty, and the optimizer is told tuples.

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
        *,
        objectives: Sequence[Objective] = (),
    ) -> None:
        self.key = key
        self.objective = objective
        self.objectives = tuple(objectives) or ((objective,) if objective is not None else ())
        self.budget = budget
        self.optimizer = optimizer
        self.pruner_name = pruner
        maximized = objective is not None and objective.direction == "max"
        self.pruner = pruning.create(pruner, sign=-1.0 if maximized else 1.0, warmup=prune_warmup, study=key)
        self.assigned: dict[int, Point] = {}
        self.finished: dict[int, Value | None] = {}
        self.pruned: set[int] = set()
        self.curves: dict[int, pruning.Known] = {}  # signed to minimize
        # Per objective, of the successes told, signed to minimize; failures never move them.
        self._best = [math.inf] * max(1, len(self.objectives))
        self._worst = [-math.inf] * max(1, len(self.objectives))
        self._failed: list[Point] = []  # not told yet: no success so far

    def replay(self, history: Sequence[tuple[int, Point, Value | None]] | Sequence[Finished]) -> None:
        """Earlier trials of this study (index, params, objective or None when failed, and for a
        pruned one its curve), in order."""
        told = [Finished(*entry) for entry in history]
        good = [(t.point, t.value) for t in told if t.value is not None and _success(t)]
        self._tell_successes([p for p, _ in good], [self._signed(y) for _, y in good])
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
        value: Value | None,
        curve: Sequence[tuple[int, float]] = (),
        *,
        pruned: bool = False,
    ) -> None:
        if index in self.finished or index not in self.assigned:
            return
        told = Finished(index, self.assigned[index], value, curve, pruned)
        self._settle(told)
        if value is not None and _success(told):
            self._tell_successes([told.point], [self._signed(value)])
        self._tell_failures()

    def prune(self, index: int, curve: Sequence[tuple[int, float]]) -> str | None:
        """Why running trial ``index``, whose objective's curve is ``curve`` so far, should stop
        now (the pruner's reason), or None."""
        if self.pruner is None or index in self.finished:
            return None
        signed = [(s, self._sign(v)) for s, v in curve]
        self.curves[index] = pruning.Known(signed, complete=False)
        others = {i: k for i, k in self.curves.items() if i != index}
        reason = self.pruner.prune(signed, others, index)
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

    def failure_value(self) -> Value | None:
        """What a failure is told, signed to minimize: the worst success plus half the successes'
        range (half the worst's magnitude, or 0.5, while they are all equal), per objective; None
        before any success. Only successes count, so failures never raise the penalty for one
        another."""
        if self._worst[0] == -math.inf:
            return None
        penalties = []
        for best, worst in zip(self._best, self._worst, strict=True):
            spread = worst - best or abs(worst) or 1.0
            # At least the next float up (a small spread can round away on a large worst), at most
            # the largest finite float (what optimizers accept).
            penalties.append(
                min(max(worst + spread / 2, math.nextafter(worst, math.inf)), sys.float_info.max)
            )
        return penalties[0] if len(penalties) == 1 else tuple(penalties)

    def _tell_successes(self, points: Sequence[Point], values: Sequence[Value]) -> None:
        if points:
            self.optimizer.tell(points, values)
            for v in values:
                for i, x in enumerate(v if isinstance(v, tuple) else (v,)):
                    self._best[i] = min(self._best[i], x)
                    self._worst[i] = max(self._worst[i], x)

    def _sign(self, value: float) -> float:
        return -value if self.objective is not None and self.objective.direction == "max" else value

    def _signed(self, value: Value) -> Value:
        if isinstance(value, tuple):
            return tuple(o.signed(v) for o, v in zip(self.objectives, value, strict=True))
        return self._sign(value)

    def _tell_failures(self) -> None:
        value = self.failure_value()
        if self._failed and value is not None:
            failed, self._failed = self._failed, []
            self.optimizer.tell(failed, [value] * len(failed))

    def best(self) -> tuple[int, float] | None:
        """The best finished trial and its objective (None in a multi-objective study: see front)."""
        done = [(i, y) for i, y in self.finished.items() if isinstance(y, float) and math.isfinite(y)]
        if not done:
            return None
        return min(done, key=lambda iy: self._sign(iy[1]))

    def front(self) -> list[tuple[int, tuple[float, ...]]]:
        """A multi-objective study's Pareto front: its finished trials that no other dominates,
        by trial number, with their objectives."""
        done = {i: y for i, y in sorted(self.finished.items()) if isinstance(y, tuple) and finite(y)}
        signed = {
            i: tuple(o.signed(v) for o, v in zip(self.objectives, y, strict=True)) for i, y in done.items()
        }
        return [(i, done[i]) for i in pareto.front(signed)]
