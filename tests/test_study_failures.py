"""What a study tells its optimizer about failed trials: a value worse than every success."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_exp.store import Store
from pytest_exp.study.study import Study
from pytest_exp.trial import Objective, Point

pytestmark = pytest.mark.usefixtures("warm_skopt")  # see conftest.py


class Recorder:
    """An optimizer that proposes x=0, 1, 2, ... and records every tell."""

    def __init__(self) -> None:
        self.asked = 0
        self.tells: list[tuple[list[float], list[float]]] = []

    def ask(self, pending: Sequence[Point] = ()) -> Point:
        self.asked += 1
        return {"x": float(self.asked - 1)}

    def tell(self, points: Sequence[Point], values: Sequence[float]) -> None:
        self.tells.append(([p["x"] for p in points], list(values)))


def study(objective: str = "y:min") -> tuple[Study, Recorder]:
    optimizer = Recorder()
    return Study("key", Objective.parse(objective), 20, optimizer), optimizer


def run(s: Study, values: Sequence[float | None]) -> None:
    for i, value in enumerate(values):
        s.ask(i)
        s.tell(i, value)


def test_a_failure_is_told_the_worst_success_plus_half_the_range() -> None:
    s, opt = study()
    run(s, [3.0, 1.0, None, 2.0])
    assert opt.tells == [([0.0], [3.0]), ([1.0], [1.0]), ([2.0], [4.0]), ([3.0], [2.0])]


def test_a_failure_after_one_success_is_worse_than_it() -> None:
    # The old rule told the worst success: with one success, the best value seen.
    s, opt = study()
    run(s, [2.0, None])
    assert opt.tells == [([0.0], [2.0]), ([1.0], [3.0])]  # 2 + |2| / 2


def test_a_single_zero_still_gives_a_worse_value() -> None:
    s, opt = study()
    run(s, [0.0, None])
    assert opt.tells[-1] == ([1.0], [0.5])


def test_failures_before_any_success_wait_for_one() -> None:
    s, opt = study()
    run(s, [None, math.nan, math.inf])
    assert opt.tells == []
    assert s.failure_value() is None
    s.ask(3)
    s.tell(3, -4.0)
    assert opt.tells == [([3.0], [-4.0]), ([0.0, 1.0, 2.0], [-2.0, -2.0, -2.0])]


def test_failures_do_not_raise_the_penalty_for_one_another() -> None:
    s, opt = study()
    run(s, [1.0, 3.0, None, None, None])
    assert [v for _, vs in opt.tells[2:] for v in vs] == [4.0, 4.0, 4.0]


def test_direction_max_penalizes_low_values() -> None:
    s, opt = study("y:max")
    run(s, [5.0, 1.0, None])
    # Told signed to minimize: -5 and -1; the failure is -1 + 4 / 2, i.e. y = -1 for a max objective.
    assert opt.tells == [([0.0], [-5.0]), ([1.0], [-1.0]), ([2.0], [1.0])]
    assert s.best() == (0, 5.0)


def test_replay_tells_successes_first_and_failures_after_them() -> None:
    s, opt = study()
    s.replay([(0, {"x": 0.0}, None), (1, {"x": 1.0}, 2.0), (2, {"x": 2.0}, 6.0), (3, {"x": 3.0}, math.nan)])
    assert opt.tells == [([1.0, 2.0], [2.0, 6.0]), ([0.0, 3.0], [8.0, 8.0])]
    assert s.finished == {0: None, 1: 2.0, 2: 6.0, 3: s.finished[3]}


finite = st.floats(min_value=-1e12, max_value=1e12)


@given(values=st.lists(st.one_of(finite, st.none()), min_size=1, max_size=30))
def test_every_failure_is_told_a_value_worse_than_every_success_before_it(values: list[float | None]) -> None:
    s, opt = study()
    run(s, values)
    worst = -math.inf
    failures = 0
    for xs, vs in opt.tells:
        for x, v in zip(xs, vs, strict=True):
            if values[int(x)] is None:
                failures += 1
                assert v > worst > -math.inf
            else:
                worst = max(worst, v)
    assert failures == (values.count(None) if worst > -math.inf else 0)


FAILING_REGION = """
import pytest

@pytest.mark.space({"kernel": ["linear", "rbf"], "x": {"type": "range", "bounds": [-5, 5]}})
def test_fit(kernel, x, record_metric):
    if kernel == "linear":
        raise ValueError("linear diverged")
    record_metric("loss", (x - 1) ** 2)
"""


def test_a_study_over_a_failing_region_completes_its_budget(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fit=FAILING_REGION)
    result = pytester.runpytest("--exp-optimize", "12", "--exp-initial-points", "4", "-p", "no:randomly")
    # Seed 0: 2 failures among the 4 random points, 2 among the 8 the model proposed (the old rule,
    # the worst success, had 3 there).
    result.assert_outcomes(passed=8, failed=4)
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        trials = sorted((t for run in store.runs() for t in store.trials(run.id)), key=lambda t: t.trial or 0)
    assert [t.trial for t in trials if t.status == "failed"] == [2, 3, 6, 8]
    assert all((t.status == "failed") == (t.params["kernel"] == "linear") for t in trials)
    result.stdout.fnmatch_lines(["best: kernel=rbf, x=1.* -> loss 0.0* (min)"])
