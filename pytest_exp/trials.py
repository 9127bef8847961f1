"""What one trial produced: the record the controller keeps, stores and summarizes.

Plain data only: records cross process boundaries (xdist reports) as dicts of plain values.
"""

from __future__ import annotations

import copy
import math
import operator
import re
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


FIELDS = (
    "test",
    "function",
    "config_id",
    "run",
    "params",
    "seed",
    "metrics",
    "status",
    "message",
    "duration",
    "worker",
    "gpus",
    "started",
    "finished",
    "objective",
    "study",
    "trial",
)
field_values = operator.attrgetter(*FIELDS)  # a record's fields as a tuple, in FIELDS order


class TrialRecord:
    """One trial as the controller sees it; ``metrics`` holds each metric's series, in order.
    ``study`` and ``trial`` are set for optimization trials: the study and the trial's slot in it
    (trial-007 is 7).

    Written out rather than a dataclass, which compiles its methods whenever its module is
    imported (1.3 ms a run for this one, measured). Slots: the controller keeps one per trial to
    the end of the run, without a ``__dict__`` each."""

    __slots__ = FIELDS

    def __init__(
        self,
        test: str,
        function: str,
        config_id: str,
        run: int,
        params: dict[str, Any],
        seed: int,
        metrics: dict[str, list[Number]] | None = None,
        status: str = "running",
        message: str = "",
        duration: float = 0.0,
        worker: str = "main",
        gpus: list[int] | None = None,
        started: float = 0.0,
        finished: float | None = None,
        objective: str | None = None,
        study: str | None = None,
        trial: int | None = None,
    ) -> None:
        self.test = test
        self.function = function
        self.config_id = config_id
        self.run = run
        self.params = params
        self.seed = seed
        self.metrics = {} if metrics is None else metrics
        self.status = status
        self.message = message
        self.duration = duration
        self.worker = worker
        self.gpus = [] if gpus is None else gpus
        self.started = started
        self.finished = finished
        self.objective = objective
        self.study = study
        self.trial = trial

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(FIELDS, field_values(self), strict=True))
        return f"TrialRecord({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(field_values(self) == field_values(other))

    __hash__ = None  # type: ignore[assignment]  # mutable: as a dataclass, unhashable

    def last(self) -> dict[str, Number]:
        """Each metric's value for this trial: the last one recorded."""
        return {name: series[-1] for name, series in self.metrics.items() if series}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, its lists and dicts copied (the record may still change)."""
        return copy.deepcopy(dict(zip(FIELDS, field_values(self), strict=True)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**data)


# Exactly these types (not np.float64, a float subclass) are plain as they are.
JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def reported_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's params as reports and records carry them: JSON values, anything else (TOML dates
    and times, objects from dict spaces) as its ``str``, as the store keeps it. The same dict
    when it holds only scalars, as it nearly always does."""
    if all(type(v) in JSON_SCALARS for v in params.values()):
        return params
    return {k: _reported(v) for k, v in params.items()}


def _reported(x: Any) -> Any:
    if type(x) in JSON_SCALARS:
        return x
    if isinstance(x, (list, tuple)):
        return [_reported(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _reported(v) for k, v in x.items()}
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, (int, float)):
        return int(x) if isinstance(x, int) else float(x)
    return str(x)


def safe_name(text: str) -> str:
    """A test id as a file name: ``tests/test_a.py::test_fit`` -> ``tests_test_a.py_test_fit``."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_")
