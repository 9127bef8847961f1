"""What the CI gate and the reports both show: a metric's summary over runs, compact number
text, which parameters vary between configurations, and a baseline comparison."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pytest_exp.space import format_values
from pytest_exp.trial import canonical_json

MISSING = "-"


class Comparison(NamedTuple):
    """What a baseline comparison adds to one test function's reports (built by
    :mod:`pytest_exp.gate`, shown by :mod:`pytest_exp.report`)."""

    source: str
    """The baseline file, as the user named it."""
    statuses: Mapping[str, str]
    """Each compared configuration's worst verdict (``regression``, ``improved``, ...), by config id."""
    lines: Sequence[str]
    """The summary: a title line, then one line per verdict."""
    verdicts: Sequence[Mapping[str, Any]]
    """Every verdict as plain data (the JSON report)."""


class MetricSummary(NamedTuple):
    """One metric over the trials of one configuration that reported it.

    ``mean`` is NaN when any value is NaN; ``std`` is the sample standard deviation (ddof=1),
    ``None`` when ``n == 1`` (one value has no spread), and NaN when a value is NaN or infinite.
    """

    mean: float
    std: float | None
    n: int


def summarize(values: Sequence[float]) -> MetricSummary:
    """Mean, sample standard deviation and count of a non-empty list of values.

    The mean is exact and then rounded (``statistics.mean``), so it never leaves
    ``[min(values), max(values)]``. A NaN value makes mean and std NaN; an infinite one makes
    the mean infinite (or NaN, with both signs) and the std NaN.
    """
    if not values:
        raise ValueError("summarize() needs at least one value")
    n = len(values)
    if any(math.isnan(v) for v in values):
        return MetricSummary(math.nan, None if n == 1 else math.nan, n)
    mean = float(statistics.mean(values))
    if n == 1:
        return MetricSummary(mean, None, 1)
    if not all(math.isfinite(v) for v in values):
        return MetricSummary(mean, math.nan, n)
    return MetricSummary(mean, float(statistics.stdev(values)), n)


def format_number(x: float | None, digits: int = 4) -> str:
    """Compact text of a number: ``digits`` significant digits, integral values as integers."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    text = f"{x:.{digits}g}"
    return text.replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def varying(params: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the parameters whose value differs between configurations, in file order.

    A parameter missing from some configurations but not others varies too.
    """
    names = list(dict.fromkeys(name for p in params for name in p))
    return [name for name in names if len({param_key(p, name) for p in params}) > 1]


def param_key(params: Mapping[str, Any], name: str) -> str | None:
    """What tells two values of a parameter apart (1, 1.0 and true differ); None when absent."""
    return canonical_json(params[name]) if name in params else None


def assignments(params: Mapping[str, Any], names: Iterable[str]) -> str:
    return ", ".join(f"{name}={format_values([params[name]])[0]}" for name in names if name in params)
