"""One test's optimization study, whatever its backend: which point each trial slot got, what
each finished slot scored, and what a failure teaches the optimizer."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

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


class Study:
    """Hands out points for trial slots and learns from their results.

    Failure policy: a trial that fails, crashes or reports a NaN/infinite objective is told a value
    worse than every success so far (:meth:`failure_value`), so the optimizer steers away from
    failing regions. Telling the worst success instead made a failure as good as the best while
    there was one success, and drew the optimizer into the failing region. Failures wait for a
    first success, which gives the penalty its scale.
    """

    def __init__(self, key: str, objective: Objective | None, budget: int, optimizer: Optimizer) -> None:
        self.key = key
        self.objective = objective
        self.budget = budget
        self.optimizer = optimizer
        self.assigned: dict[int, Point] = {}
        self.finished: dict[int, float | None] = {}
        self._best = math.inf  # of the successes told, signed to minimize; failures never move them
        self._worst = -math.inf
        self._failed: list[Point] = []  # not told yet: no success so far

    def replay(self, history: Sequence[tuple[int, Point, float | None]]) -> None:
        """Earlier trials of this study (index, params, objective or None when failed), in order."""
        good = [(p, y) for _, p, y in history if y is not None and math.isfinite(y)]
        self._tell_successes([p for p, _ in good], [self._sign(y) for _, y in good])
        for i, p, y in history:
            self.assigned[i] = p
            self.finished[i] = y
            if y is None or not math.isfinite(y):
                self._failed.append(p)
        self._tell_failures()

    def ask(self, index: int) -> Point:
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
            self._tell_successes([point], [self._sign(value)])
        self._tell_failures()

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
