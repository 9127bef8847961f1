"""Pruners: whether a running trial's learning curve is bad enough to stop it now.

Each is a pure function of the curves the study knows (its own finished trials, and the latest
curve each running one sent), so that it decides the same in one process, under xdist and after
a resume, where only the store's curves are left. The rules are Optuna's (``MedianPruner``,
``SuccessiveHalvingPruner`` with their defaults), written here so that a study without Optuna can
prune, and checked against Optuna's own in ``tests/test_pruning.py``. Values are signed to be
minimized; the reasons sign them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Curve = Sequence[tuple[int, float]]
"""A trial's (step, value) pairs, steps increasing."""

NAMES = ("none", "median", "halving")


@dataclass(frozen=True, slots=True)
class Known:
    """What the study knows of another trial: its curve, and whether it finished unpruned."""

    curve: Curve
    complete: bool


class Pruner(Protocol):
    def prune(self, curve: Curve, others: Mapping[int, Known]) -> str | None:
        """Why the trial with ``curve`` (its last pair just recorded) should stop, or None.
        ``others`` are the study's other trials, by number."""
        ...


def _text(value: float, sign: float) -> str:
    """A signed value as the user recorded it."""
    return f"{sign * value:.6g}"


@dataclass(frozen=True, slots=True)
class Median:
    """Optuna's ``MedianPruner``: stop a trial whose best value so far is worse than the median of
    the finished trials' values at its last step, once ``startup`` trials finished, from step
    ``warmup`` on, every ``interval`` steps."""

    startup: int = 5
    warmup: int = 0
    interval: int = 1
    sign: float = 1.0  # -1 for a maximized objective: what the reason shows

    def prune(self, curve: Curve, others: Mapping[int, Known]) -> str | None:
        if curve and math.isnan(curve[-1][1]):
            return "is NaN"
        finished = [dict(k.curve) for k in others.values() if k.complete]
        if not curve or not finished or len(finished) < self.startup:
            return None
        step = curve[-1][0]
        if step < self.warmup:
            return None
        nearest = (step - self.warmup) // self.interval * self.interval + self.warmup
        if len(curve) > 1 and curve[-2][0] >= nearest:
            return None  # this interval was checked at an earlier step
        at_step = [c[step] for c in finished if step in c]
        if not at_step:
            return None
        import statistics  # here: settings imports this module on every pytest run

        best, median = min(v for _, v in curve), statistics.median(at_step)
        if best > median:
            return (
                f"best so far {_text(best, self.sign)} is worse than the median {_text(median, self.sign)} "
                f"of {len(at_step)} finished trials at step {step}"
            )
        return None


@dataclass(frozen=True, slots=True)
class Halving:
    """Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive halving): at each rung step
    ``min_resource * reduction**rung`` a trial goes on only while its value there is among the
    best ``1/reduction`` of every trial's value at that rung (the first ``reduction - 1`` trials
    must be the best so far). A trial's value at a rung is its value at its first step at or
    past the rung's."""

    min_resource: int = 1
    reduction: int = 4
    sign: float = 1.0

    def prune(self, curve: Curve, others: Mapping[int, Known]) -> str | None:
        if not curve:
            return None
        step, value = curve[-1]
        if math.isnan(value):
            return "is NaN"
        rung = 0
        while True:
            at = self.min_resource * self.reduction**rung
            if step < at:
                return None
            mine = _at_or_past(curve, at)
            if mine is not None and mine[0] < step:
                rung += 1  # passed at an earlier step
                continue
            competing = [v for k in others.values() if (v := _value_at_rung(k.curve, at)) is not None]
            competing = sorted([*competing, value])
            keep = max(len(competing) // self.reduction - 1, 0)
            if value > competing[keep]:
                return (
                    f"{_text(value, self.sign)} at step {step} is not among the best 1/{self.reduction} "
                    f"of {len(competing)} trials at rung {rung} (step {at})"
                )
            rung += 1


def _at_or_past(curve: Curve, step: int) -> tuple[int, float] | None:
    return next((pair for pair in curve if pair[0] >= step), None)


def _value_at_rung(curve: Curve, step: int) -> float | None:
    pair = _at_or_past(curve, step)
    return None if pair is None else pair[1]


def create(name: str, sign: float = 1.0, warmup: int = 0) -> Pruner | None:
    """The pruner ``--exp-pruner`` names (None for ``none``); ``sign`` is -1 for a maximized
    objective, whose values the study negates; ``warmup`` is ``--exp-prune-warmup``: the median
    pruner's warm-up steps, successive halving's first rung (at least step 1)."""
    if name == "median":
        return Median(warmup=warmup, sign=sign)
    if name == "halving":
        return Halving(min_resource=max(warmup, 1), sign=sign)
    return None
