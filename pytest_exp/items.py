"""What a collected item of a space-marked test holds: its slot (a grid point, or a study's
trial number) and the plan its slots share, and how the item's trial is fixed when it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_exp.space import Grid, Space
from pytest_exp.study import backend
from pytest_exp.study.proposer import Proposing, StudySpec
from pytest_exp.trial import Trial, config_id, derive_seed, plain

if TYPE_CHECKING:
    from pytest_exp.gate import TestGate

SLOT = "_exp_slot"
"""The hidden parameter that carries each item's slot; see :class:`Slot`."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How one marked test expands into a grid sweep: its grid and what its trials share."""

    function: str
    grid: Grid
    objective: str | None
    # What the controller needs to save or compare this test's trials; None without a baseline.
    gate: TestGate | None = None
    # The item parameters this plan gives (the space's, in the signature, and the slot): any other
    # (a stacked parametrize, a parametrized fixture) makes a sweep of its own, see ``group_of``.
    own: frozenset[str] = frozenset()
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class StudyPlan:
    """What every process knows of a study after collection: enough to start it anywhere."""

    key: str
    function: str
    space: Space
    objective: str | None
    budget: int
    settings: dict[str, Any]
    replayed: int  # trials of earlier runs that count towards the budget
    backend: str = backend.DEFAULT  # --exp-optimizer's value: the backend, and its variant
    pruner: str = "none"
    prune_warmup: int = 0

    def spec(self) -> StudySpec:
        return StudySpec(
            key=self.key,
            function=self.function,
            space=self.space.to_dict(),
            objective=self.objective,
            budget=self.budget,
            settings=self.settings,
            backend=self.backend,
            pruner=self.pruner,
            prune_warmup=self.prune_warmup,
        )


@dataclass(frozen=True, slots=True)
class Slot:
    """A grid item's place: its plan, point (the grid's index of the configuration) and run. The
    trial is built when the run starts, so a collected item costs one small object beyond plain
    parametrize."""

    plan: Plan
    point: int
    run: int

    def trial(self) -> Trial:
        return self.plan.grid.trial(self.point, self.run)


@dataclass(frozen=True, slots=True)
class OptSlot:
    """An optimization trial's item: its study and its slot number (trial-007 is 7)."""

    plan: StudyPlan
    number: int


TRIAL = pytest.StashKey[Trial]()


def slot_of(item: pytest.Item) -> Slot | OptSlot | None:
    callspec = getattr(item, "callspec", None)
    slot = callspec.params.get(SLOT) if callspec is not None else None
    return slot if isinstance(slot, (Slot, OptSlot)) else None


def trial_of(item: pytest.Item) -> Trial | None:
    """The trial an item runs: its grid point, or the point the proposer gave it at setup."""
    if TRIAL in item.stash:
        return item.stash[TRIAL]
    slot = slot_of(item)
    return grid_trial(item, slot) if isinstance(slot, Slot) else None


def grid_trial(item: pytest.Item, slot: Slot) -> Trial:
    """A grid item's trial, built the first time it is asked for and kept in the item's stash."""
    if TRIAL in item.stash:
        return item.stash[TRIAL]
    trial = item.stash[TRIAL] = slot.trial()
    return trial


def build_trials(items: list[pytest.Item]) -> None:
    """Every grid item's trial, built in one pass before the first test runs (cheaper than one
    at a time between pytest's own work; see bench/README.md)."""
    for item in items:
        slot = slot_of(item)
        if isinstance(slot, Slot):
            grid_trial(item, slot)


def group_of(item: pytest.Item, slot: Slot) -> str:
    """The sweep a grid trial belongs to: its test function, and the item's other parameters
    when it has some (a stacked parametrize, a parametrized fixture), as pytest's id shows them:
    ``test_fit[mnist]``. Each combination of those is a sweep of its own, so its trials are not
    taken for repeats of another's configurations."""
    plan = slot.plan
    callspec = item.callspec  # type: ignore[attr-defined]
    if len(callspec.params) == len(plan.own):
        return plan.function
    # The item's id joins each parametrization's id with "-"; this plan's is one of them.
    ours = plan.grid.label(slot.point) + (f"-run={slot.run}" if plan.repeat > 1 else "")
    full: str = callspec.id
    if full.startswith(ours + "-"):
        rest = full[len(ours) + 1 :]
    elif full.endswith("-" + ours):
        rest = full[: -len(ours) - 1]
    else:
        rest = full.replace(f"-{ours}-", "-", 1)
    return f"{plan.function}[{rest}]"


def assign_point(item: pytest.Item, slot: OptSlot, proposer: Proposing) -> Trial:
    """Before an optimization trial's fixtures are set up: ask the proposer for its point and
    put the values where direct parametrization would have put them."""
    if TRIAL in item.stash:
        return item.stash[TRIAL]
    params = proposer.ask(slot.plan.spec(), slot.number)
    callspec = item.callspec  # type: ignore[attr-defined]
    for name in callspec.params:
        if name in params:
            callspec.params[name] = plain(params[name])  # a copy: the trial keeps what it was given
    # From the study's identity, not its epoch: trial-007 gets the same seed in every attempt.
    seed = derive_seed(slot.plan.settings["seed"], slot.plan.key.split("/")[0], slot.number)
    trial = item.stash[TRIAL] = Trial(config_id(params), 1, seed, params)
    return trial
