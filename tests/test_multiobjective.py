"""Multi-objective studies (objective="loss:min,latency:min"): the Pareto front, in real pytest
sessions (sequential, -n 2, resumed), the exports and plot, and the errors; and the front's laws."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_exp import pareto
from pytest_exp.store import Store
from pytest_exp.study import optuna as backend
from pytest_exp.study.study import Study
from pytest_exp.trial import Objective, objectives

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("warm_optuna")  # see conftest.py

TEST = """
import pytest

SPACE = {"x": {"type": "range", "bounds": [0, 1]}, "y": {"type": "range", "bounds": [0, 1]}}


@pytest.mark.space(SPACE, objective="loss:min,speed:max")
def test_mo(x, y, record_metric):
    record_metric("loss", (x - 1) ** 2 + y)
    record_metric("speed", -(x**2) - y)
"""


def stored(pytester: pytest.Pytester) -> list[Any]:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [t for run in store.runs() for t in store.trials(run.id)]


def expected_front(trials: list[Any]) -> list[int]:
    """The front by brute force: trials no other trial beats in both objectives."""
    scores = {t.trial: (t.last()["loss"], -t.last()["speed"]) for t in trials}
    return sorted(
        i
        for i, (a, b) in scores.items()
        if not any(c <= a and d <= b and (c, d) != (a, b) for c, d in scores.values())
    )


def printed_front(lines: list[str]) -> list[int]:
    start = next(i for i, line in enumerate(lines) if line.startswith("Pareto front of the study"))
    members = []
    for line in lines[start + 1 :]:
        if not line.startswith("  trial-"):
            break
        members.append(int(line.split()[0].removeprefix("trial-")))
    return members


GP = pytest.param("gp", marks=pytest.mark.skipif(backend.missing("gp") is not None, reason="needs torch"))


@pytest.mark.parametrize("variant", ["nsga2", "tpe", "random", "qmc", GP])
def test_a_study_prints_its_pareto_front(pytester: pytest.Pytester, variant: str) -> None:
    pytester.makepyfile(test_mo=TEST)
    result = pytester.runpytest("-W", "error", "--exp-optimize", "10", "--exp-optimizer", f"optuna:{variant}")
    result.assert_outcomes(passed=10)
    trials = stored(pytester)
    front = expected_front(trials)
    result.stdout.fnmatch_lines(
        [f"Pareto front of the study ({len(front)} of 10 trials; loss:min, speed:max):"]
    )
    assert printed_front(result.stdout.lines) == front
    assert 1 <= len(front) <= 10


def test_under_xdist_the_front_covers_every_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mo=TEST)
    result = pytester.runpytest("-n", "2", "--exp-optimize", "8", "--exp-optimizer", "optuna:nsga2")
    result.assert_outcomes(passed=8)
    trials = stored(pytester)
    assert {t.worker for t in trials} == {"gw0", "gw1"}
    assert len({(t.params["x"], t.params["y"]) for t in trials}) == 8  # distinct points
    assert printed_front(result.stdout.lines) == expected_front(trials)


def test_the_exports_mark_front_members(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mo=TEST)
    result = pytester.runpytest(
        "--exp-optimize", "8", "--exp-optimizer", "optuna:nsga2", "--exp-report", "t.csv"
    )
    result.assert_outcomes(passed=8)
    trials = stored(pytester)
    front = set(expected_front(trials))
    with open(pytester.path / "t.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    number = {t.test: t.trial for t in trials}
    assert {number[r["test"]] for r in rows if r["pareto"] == "True"} == front
    assert {r["pareto"] for r in rows} <= {"True", "False"}
    # Re-exported from the store, as JSON lines: the same members.
    shown = pytester.run(
        *(sys.executable, "-m", "pytest_exp", "show", "--store", ".pytest-exp", "--report", "t.jsonl")
    )
    assert shown.ret == 0, shown.stderr.str()
    lines = [json.loads(line) for line in (pytester.path / "t.jsonl").read_text().splitlines()]
    assert {d["trial"] for d in lines if d["pareto"]} == front
    table = result.stdout.lines
    header = next(line for line in table if line.startswith("rank"))
    assert header.split()[-2:] == ["front", "status"]
    marked = [line for line in table[table.index(header) + 2 :] if line.split()[-2:-1] == ["yes"]]
    assert len(marked) == len(front)


def test_the_plot_shows_the_front(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_mo=TEST)
    result = pytester.runpytest(
        "--exp-optimize", "6", "--exp-optimizer", "optuna:nsga2", "--exp-plot", "f.png"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([f"Pareto front plot: {pytester.path / 'f.png'}"])
    assert (pytester.path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_resumed_study_keeps_its_front_across_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mo=TEST)
    pytester.runpytest("--exp-optimize", "5", "--exp-optimizer", "optuna:nsga2").assert_outcomes(passed=5)
    result = pytester.runpytest("--exp-optimize", "9", "--exp-optimizer", "optuna:nsga2")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["study *: 9 of 9 trials done; resumed: 5 trials of earlier runs replayed into the optimizer"]
    )
    trials = stored(pytester)
    assert sorted(t.trial for t in trials) == list(range(9))
    assert printed_front(result.stdout.lines) == expected_front(trials)


def test_a_missing_objective_fails_the_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mo="""
        import pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [0, 1]}}, objective="loss,latency")
        def test_mo(x, record_metric):
            record_metric("loss", x)
        """
    )
    result = pytester.runpytest("--exp-optimize", "2", "--exp-optimizer", "optuna:tpe")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["the objective 'latency' was not recorded (recorded: loss); call record_metric('latency', value)"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--exp-optimizer", "skopt"],
            "--exp-optimizer skopt optimizes one objective, and objective 'loss:min,speed:max' names 2: "
            "use optuna:nsga2, optuna:tpe, optuna:gp, optuna:qmc or optuna:random; used by "
            "test_mo.py::test_mo",
        ),
        (
            ["--exp-optimizer", "optuna:cmaes"],
            "--exp-optimizer optuna:cmaes optimizes one objective, and objective 'loss:min,speed:max' names "
            "2: use optuna:nsga2, optuna:tpe, optuna:gp, optuna:qmc or optuna:random; used by "
            "test_mo.py::test_mo",
        ),
        (
            ["--exp-optimizer", "optuna:nsga2", "--exp-pruner", "median"],
            "--exp-pruner median: a multi-objective study cannot be pruned (objective "
            "'loss:min,speed:max' names 2); use --exp-pruner none; used by test_mo.py::test_mo",
        ),
    ],
)
def test_what_cannot_run_several_objectives_is_refused(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_mo=TEST)
    result = pytester.runpytest("--exp-optimize", "3", *args)
    result.assert_outcomes(errors=1)
    assert message in result.stdout.lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss,loss:max", "objective 'loss' named twice"),
        ("loss,latency:fastest", "objective 'latency:fastest': expected NAME, NAME:min or NAME:max"),
        ("loss,", "objective '': expected NAME, NAME:min or NAME:max"),
    ],
)
def test_bad_objective_lists(pytester: pytest.Pytester, text: str, message: str) -> None:
    pytester.makepyfile(test_mo=TEST)
    result = pytester.runpytest("--exp-objective", text)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*argument --exp-objective: invalid value {text!r}: {message}"])


def test_objectives_parse_in_order() -> None:
    assert objectives("loss, latency:MAX") == (Objective("loss", "min"), Objective("latency", "max"))
    assert objectives("acc:max") == (Objective("acc", "max"),)
    with pytest.raises(ValueError, match=r"^expected NAME, NAME:min or NAME:max \(one objective\)$"):
        Objective.parse("a,b")


class Recorder:
    """An optimizer that records what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[float, ...]] = []

    def ask(self, pending: Any = ()) -> dict[str, Any]:
        return {"x": len(self.told)}

    def tell(self, points: Any, values: Any) -> None:
        self.told += list(values)


def test_a_failure_is_told_a_penalty_per_objective() -> None:
    named = objectives("loss:min,acc:max")
    opt = Recorder()
    study = Study("k", named[0], 4, opt, objectives=named)
    for i in range(4):
        study.ask(i)
    study.tell(0, None)  # waits for a first success
    study.tell(1, (2.0, 0.5))
    study.tell(2, (4.0, 0.9))
    study.tell(3, None)
    # Signed to minimize: acc 0.5 and 0.9 are -0.5 and -0.9; worst + half the range, each.
    assert opt.told == [(2.0, -0.5), (3.0, -0.25), (4.0, -0.9), (5.0, pytest.approx(-0.3))]
    assert study.front() == [(1, (2.0, 0.5)), (2, (4.0, 0.9))]
    assert study.best() is None


def test_optuna_studies_get_one_direction_per_objective() -> None:
    from pytest_exp.space import Space

    space = Space.from_dict({"x": {"type": "range", "bounds": [0, 1]}})
    opt = backend.create(space, {"seed": 0, "variant": "nsga2", "objectives": 3})
    assert opt.study.directions == [optuna.study.StudyDirection.MINIMIZE] * 3
    with pytest.raises(ValueError, match=r"^optuna:cmaes optimizes one objective, not 2$"):
        backend.create(space, {"seed": 0, "variant": "cmaes", "objectives": 2})


vectors = st.lists(st.integers(-3, 3), min_size=2, max_size=2).map(tuple)


@given(st.dictionaries(st.integers(0, 30), vectors, max_size=25))
def test_the_front_is_exactly_the_undominated(values: dict[int, tuple[int, ...]]) -> None:
    front = pareto.front(values)
    assert front == [k for k in values if k in set(front)]  # the mapping's order
    for k in front:
        assert not any(pareto.dominates(values[j], values[k]) for j in values)
    for k in set(values) - set(front):
        assert any(pareto.dominates(values[j], values[k]) for j in front)
    assert bool(front) == bool(values)


@given(vectors, vectors)
def test_domination_is_strict(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    assert not (pareto.dominates(a, b) and pareto.dominates(b, a))
    assert not pareto.dominates(a, a)
