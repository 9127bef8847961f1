"""What one trial produced: the record the controller keeps, stores and summarizes.

Plain data only: records cross process boundaries (xdist reports) as dicts of plain values.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

STATUSES = ("passed", "failed", "error", "skipped", "crashed", "interrupted", "running")
Number = int | float | bool


class Objective(NamedTuple):
    """The metric that orders trials (and later drives the optimizer)."""

    name: str
    direction: str = "min"

    @classmethod
    def parse(cls, text: str) -> Objective:
        name, sep, direction = text.strip().rpartition(":")
        if not sep:
            name, direction = direction, "min"
        direction = direction.strip().lower()
        if not name.strip() or direction not in ("min", "max"):
            raise ValueError("expected NAME, NAME:min or NAME:max")
        return cls(name.strip(), direction)

    def better(self, value: float) -> float:
        """A key that sorts the best value first; NaN and missing sort last."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.inf
        return value if self.direction == "min" else -value

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


@dataclass(slots=True)  # the controller keeps one per trial to the end: no __dict__ each
class TrialRecord:
    """One trial as the controller sees it; ``metrics`` holds each metric's series, in order."""

    test: str
    function: str
    config_id: str
    run: int
    params: dict[str, Any]
    seed: int
    metrics: dict[str, list[Number]] = field(default_factory=dict)
    status: str = "running"
    message: str = ""
    duration: float = 0.0
    worker: str = "main"
    gpus: list[int] = field(default_factory=list)
    started: float = 0.0
    finished: float | None = None
    objective: str | None = None
    # Set for optimization trials: the study and the trial's slot in it (trial-007 is 7).
    study: str | None = None
    trial: int | None = None

    def last(self) -> dict[str, Number]:
        """Each metric's value for this trial: the last one recorded."""
        return {name: series[-1] for name, series in self.metrics.items() if series}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**data)


def safe_name(text: str) -> str:
    """A test id as a file name: ``tests/test_a.py::test_fit`` -> ``tests_test_a.py_test_fit``."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_")
