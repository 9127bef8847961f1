"""What a test's reports carry from the process that ran it to the controller: two named
records of plain values. An xdist worker sends them pickled (execnet serializes a tuple object by
object, several times slower); in one process they travel as they are."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_exp.trial import Number

if TYPE_CHECKING:
    from pytest_exp.gate import TestGate

ATTR = "exp_trial"
"""The report attribute that carries a message."""


@dataclass(slots=True)
class TrialStarted:
    """On a trial's setup report: who it is. The controller builds its record from this and
    sets the rest from the reports themselves."""

    function: str  # its sweep (see items.group_of) or study's test function
    config_id: str
    run: int
    params: dict[str, Any]  # JSON values (trial.json_params)
    seed: int
    metrics: dict[str, list[Number]]
    steps: dict[str, list[int]]
    worker: str
    gpus: list[int]
    started: float
    objective: str | None
    study: str | None = None
    trial: int | None = None
    gate: TestGate | None = None  # its sweep's baseline gate, when the run has a baseline


@dataclass(slots=True)
class TrialProgress:
    """On a later report, when something changed: every metric's series (and steps), the
    objective an optimization trial reported, and whether the study's pruner stopped it."""

    metrics: dict[str, list[Number]]
    steps: dict[str, list[int]]
    objective: str | None = None
    pruned: bool = False


Message = TrialStarted | TrialProgress


def encode(message: Message) -> bytes:
    return pickle.dumps(message, protocol=5)


def decode(data: bytes) -> Message:
    """What :func:`encode` made, on the controller: it comes from one of its own workers (which
    execnet already trusts to run code), hence no restricted unpickler."""
    message: Message = pickle.loads(data)
    return message
