"""The Pareto front of a multi-objective study or sweep: the points no other point dominates.

Pure and small: studies, summaries and plots all ask it, with values signed to be minimized.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one (minimizing)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def front(values: Mapping[K, Sequence[float]]) -> list[K]:
    """The keys whose values no other value dominates, in the mapping's order (equal values are
    all on the front). Quadratic, which is fine for the hundreds of trials a study has."""
    items = list(values.items())
    return [k for k, v in items if not any(dominates(w, v) for _, w in items)]
