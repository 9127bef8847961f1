"""What a running trial records: validated metric values, each metric a series in call order."""

from __future__ import annotations

import math
import sys
from typing import Any

from pytest_exp.trial import Number, plain


class MetricError(TypeError):
    """A metric name or value that cannot be recorded."""


# Ints past the float range cannot be summarized, exported or told to an optimizer.
_FLOAT_INTS = range(-int(sys.float_info.max), int(sys.float_info.max) + 1)


def _beyond_floats(name: str, value: int) -> MetricError:
    return MetricError(
        f"record_metric({name!r}, ...): an int of {len(str(abs(value)))} digits is beyond the float "
        f"range (at most about {sys.float_info.max:.4g}); record float(value) or a smaller unit"
    )


def plain_number(name: str, value: Any) -> Number:
    """``value`` as a plain Python bool, int or float: numpy and torch scalars, 0-d arrays and
    one-element tensors included (numpy and torch are never imported here)."""
    __tracebackhide__ = True  # the error is the caller's: show their line, not ours
    if isinstance(value, (bool, int, float)):
        # Subclasses (np.float64 is a float) become the base type: reports must carry plain values.
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, float):
            return float(value)
        if value not in _FLOAT_INTS:
            raise _beyond_floats(name, value)
        return int(value)
    if type(value).__module__.startswith("torch") and getattr(value, "numel", lambda: 0)() == 1:
        value = value.item()
    number = plain(value)
    if isinstance(number, (bool, int, float)):
        if type(number) is int and number not in _FLOAT_INTS:
            raise _beyond_floats(name, number)
        return number
    raise MetricError(
        f"record_metric({name!r}, ...): expected a number (int, float, bool, numpy scalar or 0-d "
        f"array), got {type(value).__name__} {value!r:.60}"
    )


def plain_step(name: str, step: Any, previous: int | None) -> int:
    """``step`` as an int that follows ``previous``, the metric's last step."""
    __tracebackhide__ = True
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise MetricError(
            f"record_metric({name!r}, ..., step={step!r:.40}): expected an int step (0, 1, ...), "
            f"got {type(step).__name__}"
        )
    number = int(step.__index__())
    if number < 0:
        raise MetricError(f"record_metric({name!r}, ..., step={number}): expected a step of 0 or more")
    if previous is not None and number <= previous:
        raise MetricError(
            f"record_metric({name!r}, ..., step={number}): steps must increase, and {name!r} was "
            f"recorded at step {previous} already"
        )
    return number


class MetricRecorder:
    """The metrics of one trial. Recording a name again extends its series (a learning curve);
    a metric recorded with ``step=`` keeps each value's step, for pruning and the exports."""

    __slots__ = ("finite", "properties", "property_at", "recorded", "series", "steps")  # no __dict__ each

    def __init__(self, properties: list[tuple[str, object]] | None = None) -> None:
        self.series: dict[str, list[Number]] = {}
        self.steps: dict[str, list[int]] = {}
        self.recorded = 0  # values recorded so far: tells whether a report must carry the series again
        self.finite = True  # whether every value recorded so far is finite
        # The test's user_properties, which hold each metric's last value as it is recorded, so
        # every report of the test carries them (junitxml properties, json-report entries).
        self.properties = properties
        self.property_at: dict[str, int] = {}

    def record(self, name: str, value: Any, step: Any = None) -> None:
        __tracebackhide__ = True
        if not isinstance(name, str) or not name.strip():
            raise MetricError(f"record_metric: the name must be a non-empty string (got {name!r})")
        # Nearly always a float, else an int. Before setdefault: a refused value leaves no series.
        if type(value) is not float and (type(value) is not int or value not in _FLOAT_INTS):
            value = plain_number(name, value)
        if step is not None or name in self.steps:
            self._step(name, step)
        self.series.setdefault(name, []).append(value)
        self.recorded += 1
        if self.properties is not None:
            at = self.property_at.get(name)
            if at is None:
                self.property_at[name] = len(self.properties)
                self.properties.append((name, value))
            else:
                self.properties[at] = (name, value)
        if type(value) is float and value - value != 0.0:  # NaN or infinite, without a call
            self.finite = False

    def _step(self, name: str, step: Any) -> None:
        """Keep a value's step: every value of a metric has one, or none has."""
        __tracebackhide__ = True
        steps = self.steps.get(name)
        if step is None or (steps is None and name in self.series):
            given, missing = ("without step=", "with") if step is None else ("with step=", "without")
            raise MetricError(
                f"record_metric({name!r}, ...) {given}, but {name!r} was recorded {missing} step= "
                "before: give every value of a metric a step, or none"
            )
        number = plain_step(name, step, steps[-1] if steps else None)
        self.steps.setdefault(name, []).append(number)

    def curve(self, name: str) -> list[tuple[int, Number]]:
        """The (step, value) pairs of a metric recorded with steps; [] for any other."""
        return list(zip(self.steps.get(name, ()), self.series.get(name, ()), strict=False))

    def prune_reason(self) -> str | None:
        """Why the study's pruner would stop this trial now (see ``exp_trial.should_prune``);
        None here: only a study's running trial can be pruned."""
        return None

    def nonfinite(self) -> list[str]:
        """Why the trial must fail: one line per metric whose value is NaN or infinite."""
        if self.finite:
            return []
        lines = []
        for name, series in self.series.items():
            bad = [i for i, v in enumerate(series) if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                lines.append(f"metric {name!r} is {series[bad[0]]} (value {bad[0] + 1} of {len(series)})")
        return lines


class MetricSink:
    """``record_metric`` as tests get it: records into the recorder of the test running now.

    One per process (``SINK``, a session fixture that asks for nothing, not even ``request``): a
    function-scoped fixture, or one that asks for ``request``, costs every test a fixture lookup.
    A pytest run inside a test (pytester) sets its own tests' recorders and puts the outer one back.
    """

    def __init__(self) -> None:
        self.current: MetricRecorder | None = None

    def __call__(self, name: str, value: Any, step: Any = None) -> None:
        __tracebackhide__ = True
        if self.current is None:
            raise MetricError(f"record_metric({name!r}, ...) was called outside a running test")
        self.current.record(name, value, step)


SINK = MetricSink()
