"""Pruners: whether a running trial's learning curve is bad enough to stop it now.

Each is a pure function of the curves the study knows (its own finished trials, and the latest
curve each running one sent), so that it decides the same in one process, under xdist and after
a resume, where only the store's curves are left. The rules are Optuna's (``MedianPruner``,
``SuccessiveHalvingPruner`` and ``HyperbandPruner`` with their defaults), written here so that a
study without Optuna can prune, and checked against Optuna's own in ``tests/test_pruning.py``.
Values are signed to be minimized; the reasons sign them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Curve = Sequence[tuple[int, float]]
"""A trial's (step, value) pairs, steps increasing."""

NAMES = ("none", "median", "halving", "hyperband")


@dataclass(frozen=True, slots=True)
class Known:
    """What the study knows of another trial: its curve, and whether it finished unpruned."""

    curve: Curve
    complete: bool


class Pruner(Protocol):
    def prune(self, curve: Curve, others: Mapping[int, Known], number: int = 0) -> str | None:
        """Why trial ``number``, with ``curve`` (its last pair just recorded), should stop, or
        None. ``others`` are the study's other trials, by number."""
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

    def prune(self, curve: Curve, others: Mapping[int, Known], number: int = 0) -> str | None:
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
    past the rung's. ``rate`` skips the first rungs (Optuna's ``min_early_stopping_rate``)."""

    min_resource: int = 1
    reduction: int = 4
    sign: float = 1.0
    rate: int = 0

    def prune(self, curve: Curve, others: Mapping[int, Known], number: int = 0) -> str | None:
        if not curve:
            return None
        step, value = curve[-1]
        if math.isnan(value):
            return "is NaN"
        rung = 0
        while True:
            at = self.min_resource * self.reduction ** (self.rate + rung)
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
                    f"of {len(competing)} trials at rung {self.rate + rung} (step {at})"
                )
            rung += 1


@dataclass(frozen=True, slots=True)
class Hyperband:
    """Optuna's ``HyperbandPruner`` (``max_resource="auto"``, reduction factor 3): several
    successive halvings ("brackets") side by side, the first pruning from rung 1, the last only
    late; bracket ``b`` starts its rungs at ``min_resource * 3**b`` and judges a trial among the
    trials of its own bracket only. Trials are dealt to brackets by a hash of the study's name and
    their number, as Optuna deals them, with more trials to the brackets that prune early. The
    number of brackets follows from the longest curve of the finished trials (the last step + 1,
    Optuna's "auto"); until a trial finished, nothing is pruned. One difference: Optuna's "auto"
    leaves out of every rung the trials that ran before the first one finished (it records rung
    values only once it knows its brackets); here their curves count, as with a fixed
    ``max_resource``."""

    study: str
    min_resource: int = 1
    reduction: int = 3
    sign: float = 1.0

    def prune(self, curve: Curve, others: Mapping[int, Known], number: int = 0) -> str | None:
        steps = [k.curve[-1][0] for k in others.values() if k.complete and k.curve]
        if not steps:
            return None
        budgets = self.budgets(max(steps) + 1)
        if not budgets:  # curves shorter than the first rung: no bracket can judge
            return None
        bracket = self.bracket(number, budgets)
        mates = {n: k for n, k in others.items() if self.bracket(n, budgets) == bracket}
        halving = Halving(self.min_resource, self.reduction, self.sign, rate=bracket)
        reason = halving.prune(curve, mates, number)
        return reason if reason is None or reason == "is NaN" else f"{reason} of bracket {bracket}"

    def budgets(self, max_resource: int) -> list[int]:
        """Each bracket's share of trials (Optuna's trial allocation budgets)."""
        n = math.floor(math.log(max_resource / self.min_resource, self.reduction)) + 1
        return [math.ceil(n * self.reduction ** (n - 1 - b) / (n - b)) for b in range(n)]

    def bracket(self, number: int, budgets: Sequence[int]) -> int:
        import binascii  # here: settings imports this module on every pytest run

        left = binascii.crc32(f"{self.study}_{number}".encode()) % sum(budgets)
        for b, budget in enumerate(budgets):
            left -= budget
            if left < 0:
                return b
        raise AssertionError("unreachable: the budgets sum to more than the hash's remainder")


def _at_or_past(curve: Curve, step: int) -> tuple[int, float] | None:
    return next((pair for pair in curve if pair[0] >= step), None)


def _value_at_rung(curve: Curve, step: int) -> float | None:
    pair = _at_or_past(curve, step)
    return None if pair is None else pair[1]


def create(name: str, sign: float = 1.0, warmup: int = 0, study: str = "") -> Pruner | None:
    """The pruner ``--exp-pruner`` names (None for ``none``); ``sign`` is -1 for a maximized
    objective, whose values the study negates; ``warmup`` is ``--exp-prune-warmup``: the median
    pruner's warm-up steps, successive halving's and Hyperband's first rung (at least step 1);
    ``study`` the study's name, which deals Hyperband's trials to its brackets."""
    if name == "median":
        return Median(warmup=warmup, sign=sign)
    if name == "halving":
        return Halving(min_resource=max(warmup, 1), sign=sign)
    if name == "hyperband":
        return Hyperband(study, min_resource=max(warmup, 1), sign=sign)
    return None
