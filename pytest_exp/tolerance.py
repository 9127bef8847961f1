"""The tolerance grammar of baseline comparisons: how far a metric may move before it fails.

Pure Python. A tolerance setting is a comma-separated list of ``NAME:DIRECTION[:ALLOWANCE]`` specs,
modeled on pytest-benchmark's ``--benchmark-compare-fail=mean:5%``::

    loss:min:2%            loss may grow by 2% of the baseline value
    accuracy:max:0.01      accuracy may drop by 0.01
    loss:min:2%+0.001      loss may grow by 2% of the baseline or by 0.001, whichever is larger
    *:min:5%               every metric without a spec of its own
    n_params:any           any change at all fails (no better side)
    train_seconds:report   compared and listed, never fails (changes beyond an allowance warn)
    train_seconds:report:50%  the same, with changes up to 50% counted as within
    seed_used:ignore       not compared at all: no verdict, not even for a missing value

``NAME`` is a metric name or ``*``; it may itself contain colons (it is everything before the
direction) but not commas. ``DIRECTION`` is ``min`` (lower is better), ``max`` (higher is
better), ``any`` (a change either way fails), ``report`` (a change either way is shown, and
never fails) or ``ignore`` (no comparison; it takes no allowance). ``ALLOWANCE`` is a
percentage of the baseline's magnitude, an absolute amount, or both joined by ``+``; left out,
it is 0 (exact).

With both parts, the allowance is ``max(relative * |baseline|, absolute)``: a change fails only
when it exceeds both the relative and the absolute allowance. The absolute part keeps a
relative tolerance meaningful near 0, where any percentage of the baseline vanishes.

A metric no spec covers (neither its own nor ``*``) is judged by the objective's direction,
exact, when it is the test's objective, and is ``report`` otherwise (:func:`tolerance_for`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pytest_exp.trial import Objective

SPEC_FORM = "NAME:DIRECTION[:ALLOWANCE] (e.g. loss:min:2%, accuracy:max:0.01, loss:min:2%+0.001)"
WILDCARD = "*"
DIRECTIONS = ("min", "max", "any", "report", "ignore")
Direction = Literal["min", "max", "any", "report", "ignore"]
DIRECTION_CHOICES = "min, max, any, report or ignore"


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move towards worse before it is a regression.

    ``relative`` is a fraction of the baseline's magnitude (``2%`` is 0.02); ``absolute`` is in
    the metric's units. The allowance is the larger of the two. ``report`` measures a change
    either way, as ``any`` does, but never fails; ``ignore`` is not compared at all.
    """

    direction: Direction = "any"
    relative: float = 0.0
    absolute: float = 0.0

    def allowance(self, baseline: float) -> float:
        """How much worse than ``baseline`` a value may be and still pass."""
        return max(self.relative * abs(baseline), self.absolute)

    @property
    def sided(self) -> bool:
        """Whether the direction says which way is worse (``min``, ``max``)."""
        return self.direction in ("min", "max")

    def worse_by(self, value: float, baseline: float) -> float:
        """How much worse ``value`` is than ``baseline`` (negative: better; unsided: the size of
        the change, never negative)."""
        if self.direction == "min":
            return value - baseline
        if self.direction == "max":
            return baseline - value
        return abs(value - baseline)

    def _parts(self) -> list[str]:
        relative = [f"{self.relative * 100:.12g}%"] if self.relative else []
        return relative + ([f"{self.absolute:.12g}"] if self.absolute else [])

    def allowance_text(self) -> str:
        """``2%``, ``0.01``, ``2%+0.01`` or ``0``: the ALLOWANCE part of a spec."""
        return "+".join(self._parts()) or "0"

    def spec(self, name: str) -> str:
        """The spec that parses back into this tolerance: ``loss:min:2%``, ``n:ignore``."""
        if self.direction == "ignore":
            return f"{name}:ignore"
        return f"{name}:{self.direction}:{self.allowance_text()}"

    def __str__(self) -> str:
        """``min, 2%``; ``min, 2% or 0.001``; ``any, exact``; ``report, exact``; ``ignore``."""
        if self.direction == "ignore":
            return "ignore"
        return f"{self.direction}, {' or '.join(self._parts()) or 'exact'}"


DEFAULT_TOLERANCE = Tolerance("report", 0.0, 0.0)
"""For a metric no spec covers that is not the test's objective: compared and listed, never
failing. Nothing says which way such a metric is better (a guessed direction could pass a falling
accuracy as an improvement, or call a faster fit time worse), and failing on any change makes the
gate fail on noise (timings); a metric that should gate gets a spec."""


def parse_tolerances(text: str) -> dict[str, Tolerance]:
    """Parse a comma-separated list of ``NAME:DIRECTION[:ALLOWANCE]`` specs; ``""`` gives ``{}``.

    Raises ``ValueError("bad tolerance 'SPEC': PROBLEM")`` naming the spec and what was expected.
    """
    if not text.strip():
        return {}
    tolerances: dict[str, Tolerance] = {}
    # Newlines separate specs too: an ini value may hold one spec per line.
    text = ",".join(line for line in text.splitlines() if line.strip())
    for item in text.split(","):
        spec = item.strip()
        name, tolerance = _parse_spec(spec)
        if name in tolerances:
            raise ValueError(f"bad tolerance {spec!r}: {name} is given twice")
        tolerances[name] = tolerance
    return tolerances


def tolerance_setting(value: object) -> dict[str, Tolerance]:
    """An ini/marker value: one spec string (comma-separated) or a list of them."""
    if isinstance(value, str):
        return parse_tolerances(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_tolerances(",".join(v for v in value if v.strip()))
    raise ValueError(f"expected {SPEC_FORM}, comma-separated")


def _parse_spec(spec: str) -> tuple[str, Tolerance]:
    def bad(problem: str) -> ValueError:
        return ValueError(f"bad tolerance {spec!r}: {problem}")

    parts = spec.split(":")
    if len(parts) < 2:
        raise bad(f"expected {SPEC_FORM}")
    if parts[-1].strip().lower() in DIRECTIONS:
        name, direction, allowance = ":".join(parts[:-1]), parts[-1], ""
    elif len(parts) == 2:
        raise bad(f"direction must be {DIRECTION_CHOICES} (expected {SPEC_FORM})")
    else:
        name, direction, allowance = ":".join(parts[:-2]), parts[-2], parts[-1]
    name = name.strip()
    direction = direction.strip().lower()
    if not name:
        raise bad("missing metric name (use * for every metric)")
    if direction not in DIRECTIONS:
        raise bad(f"direction must be {DIRECTION_CHOICES}")
    if direction == "ignore" and allowance.strip():
        raise bad("ignore takes no allowance (the metric is not compared)")
    relative, absolute = _parse_allowance(allowance.strip(), bad)
    return name, Tolerance(_direction(direction), relative, absolute)


_BY_NAME: dict[str, Direction] = {"min": "min", "max": "max", "report": "report", "ignore": "ignore"}


def _direction(text: str) -> Direction:
    return _BY_NAME.get(text, "any")


def _parse_allowance(text: str, bad: Callable[[str], ValueError]) -> tuple[float, float]:
    if not text:
        return 0.0, 0.0
    expected = f"allowance {text!r} must be a percentage (2%), an amount (0.01) or both (2%+0.01)"
    relative: float | None = None
    absolute: float | None = None
    for raw in text.split("+"):
        term = raw.strip()
        percent = term.endswith("%")
        try:
            number = float(term[:-1] if percent else term)
        except ValueError:
            raise bad(expected) from None
        if not math.isfinite(number):
            raise bad(expected)
        if number < 0:
            raise bad(f"allowance {text!r} must not be negative")
        if percent:
            if relative is not None:
                raise bad(f"allowance {text!r} gives a percentage twice")
            relative = number / 100
        else:
            if absolute is not None:
                raise bad(f"allowance {text!r} gives an amount twice")
            absolute = number
    return relative or 0.0, absolute or 0.0


def tolerance_for(
    metric: str,
    per_test: Mapping[str, Tolerance] | None,
    defaults: Mapping[str, Tolerance] | None,
    objective: Objective | None = None,
) -> Tolerance:
    """The tolerance of ``metric``, first found of:

    1. the test's own spec for the metric (marker);
    2. the command-line/ini spec for the metric;
    3. the test's ``*`` spec;
    4. the command-line/ini ``*`` spec;
    5. the objective's direction with an exact allowance, when ``metric`` is the objective;
    6. :data:`DEFAULT_TOLERANCE` (``report``: compared and listed, never failing).

    A named spec beats a wildcard at any level: ``*`` is a blanket guess, a name is a statement
    about this metric (a test's ``*:max:1%`` must not turn a command line's ``loss:min`` around).
    """
    per_test = per_test or {}
    defaults = defaults or {}
    for source, key in ((per_test, metric), (defaults, metric), (per_test, WILDCARD), (defaults, WILDCARD)):
        if key in source:
            return source[key]
    if objective is not None and objective.name == metric:
        return Tolerance(_direction(objective.direction), 0.0, 0.0)
    return DEFAULT_TOLERANCE
