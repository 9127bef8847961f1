"""Pruning: steps in record_metric, the pruners' rules (against Optuna's own), and real pytest
sessions that prune, in one process and under xdist, and resume."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_exp.metrics import MetricError, MetricRecorder
from pytest_exp.store import Store
from pytest_exp.study import pruning
from pytest_exp.study.study import Study
from pytest_exp.trial import Objective, Point

pytestmark = pytest.mark.usefixtures("warm_skopt")  # see conftest.py


# --------------------------------------------------------------------------- steps


def test_steps_are_kept_next_to_their_values() -> None:
    r = MetricRecorder()
    r.record("loss", 1.0, step=0)
    r.record("loss", 0.5, step=3)
    r.record("acc", 0.1)
    assert (r.series, r.steps) == ({"loss": [1.0, 0.5], "acc": [0.1]}, {"loss": [0, 3]})
    assert r.curve("loss") == [(0, 1.0), (3, 0.5)]
    assert r.curve("acc") == []


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        (
            [("loss", 1.0, None), ("loss", 1.0, 1)],
            "record_metric('loss', ...) with step=, but 'loss' was recorded without step= before: give "
            "every value of a metric a step, or none",
        ),
        (
            [("loss", 1.0, 0), ("loss", 1.0, None)],
            "record_metric('loss', ...) without step=, but 'loss' was recorded with step= before: give "
            "every value of a metric a step, or none",
        ),
        (
            [("loss", 1.0, 2), ("loss", 1.0, 2)],
            "record_metric('loss', ..., step=2): steps must increase, and 'loss' was recorded at step 2 "
            "already",
        ),
        ([("loss", 1.0, -1)], "record_metric('loss', ..., step=-1): expected a step of 0 or more"),
        (
            [("loss", 1.0, 1.5)],
            "record_metric('loss', ..., step=1.5): expected an int step (0, 1, ...), got float",
        ),
        (
            [("loss", 1.0, True)],
            "record_metric('loss', ..., step=True): expected an int step (0, 1, ...), got bool",
        ),
    ],
    ids=["mixed", "mixed-back", "not-increasing", "negative", "float", "bool"],
)
def test_bad_steps_are_refused(calls: list[tuple[str, float, object]], message: str) -> None:
    r = MetricRecorder()
    *before, last = calls
    for name, value, step in before:
        r.record(name, value, step)
    with pytest.raises(MetricError) as info:
        r.record(*last)
    assert str(info.value) == message
    assert len(r.series["loss"]) == len(before) if before else "loss" not in r.series


# --------------------------------------------------------------------------- the rules


def test_median_waits_for_its_startup_trials_and_checks_the_step_reached() -> None:
    done = {i: pruning.Known([(0, 1.0), (1, float(i))], complete=True) for i in range(5)}
    median = pruning.Median()
    assert median.prune([(0, 5.0)], dict(list(done.items())[:4])) is None  # 4 of 5 startup trials
    assert median.prune([(0, 1.0), (1, 2.0)], done) is None  # 2 is the median of 0..4
    assert median.prune([(0, 3.0), (1, 2.5)], done) == (
        "best so far 2.5 is worse than the median 2 of 5 finished trials at step 1"
    )
    assert median.prune([(0, 3.0), (7, 2.5)], done) is None  # no finished trial reached step 7
    running = {**done, 9: pruning.Known([(0, 9.0), (1, 9.0)], complete=False)}
    assert median.prune([(0, 1.0), (1, 2.0)], running) is None  # running and pruned trials do not count


def test_halving_keeps_the_best_quarter_at_each_rung() -> None:
    others = {i: pruning.Known([(1, float(i)), (4, float(i))], complete=True) for i in range(7)}
    halving = pruning.Halving(sign=-1.0)  # values shown as recorded: a maximized objective
    assert halving.prune([(1, 0.5)], others) is None  # 2nd best of 8 at rung 0: promoted
    assert halving.prune([(1, 1.5)], others) == (
        "-1.5 at step 1 is not among the best 1/4 of 8 trials at rung 0 (step 1)"
    )
    assert halving.prune([(1, 0.5), (2, 9.0)], others) is None  # between rungs: nothing to judge
    assert halving.prune([(1, 0.5), (4, 3.0)], others) == (
        "-3 at step 4 is not among the best 1/4 of 8 trials at rung 1 (step 4)"
    )


def test_a_nan_value_is_pruned() -> None:
    assert pruning.Median().prune([(0, math.nan)], {}) == "is NaN"
    assert pruning.Halving().prune([(0, 1.0), (1, math.nan)], {}) == "is NaN"


CURVES = st.lists(
    st.lists(st.integers(0, 4).map(float), min_size=1, max_size=12),  # ties are likely
    min_size=1,
    max_size=14,
)


# Hyperband's brackets follow from the finished trials' length, which Optuna fixes at its first
# judgement: curves of one length, as epochs of training give.
EQUAL_CURVES = st.integers(1, 30).flatmap(
    lambda n: st.lists(
        st.lists(st.integers(0, 4).map(float), min_size=n, max_size=n), min_size=1, max_size=24
    )
)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize(
    ("name", "warmup"),
    [("median", 0), ("median", 2), ("halving", 0), ("halving", 2), ("hyperband", 0), ("hyperband", 2)],
)
@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_the_pruners_decide_as_optunas(name: str, warmup: int, direction: str, data: st.DataObject) -> None:
    """Trial after trial, each checked at every step: ours prunes where Optuna's prunes."""
    optuna = pytest.importorskip("optuna")
    curves = data.draw(EQUAL_CURVES if name == "hyperband" else CURVES)
    if name == "median":
        theirs = optuna.pruners.MedianPruner(n_warmup_steps=warmup)
    elif name == "halving":
        theirs = optuna.pruners.SuccessiveHalvingPruner(min_resource=max(warmup, 1), reduction_factor=4)
    else:
        # A fixed max_resource: with "auto", Optuna leaves the first trial out of every rung (see
        # pruning.Hyperband); it equals ours, the finished trials' length, here.
        theirs = optuna.pruners.HyperbandPruner(
            min_resource=max(warmup, 1), max_resource=len(curves[0]), reduction_factor=3
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, pruner=theirs, study_name="key/run")
    sign = -1.0 if direction == "maximize" else 1.0
    ours = pruning.create(name, sign, warmup, study="key/run")
    assert ours is not None
    known: dict[int, pruning.Known] = {}
    for number, values in enumerate(curves):
        trial = study.ask()
        curve: list[tuple[int, float]] = []
        pruned = False
        for step, value in enumerate(values):
            trial.report(value, step)
            curve.append((step, sign * value))
            theirs_says = trial.should_prune()
            assert (ours.prune(curve, known, number) is not None) == theirs_says, (number, step)
            if theirs_says:
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, values[-1])
        known[number] = pruning.Known(list(curve), complete=not pruned)


# --------------------------------------------------------------------------- the study


class Recorder:
    def __init__(self) -> None:
        self.tells: list[tuple[list[Point], list[float]]] = []

    def ask(self, pending: Sequence[Point] = ()) -> Point:
        return {"x": float(len(self.tells))}

    def tell(self, points: Sequence[Point], values: Sequence[float]) -> None:
        self.tells.append((list(points), list(values)))


def test_a_study_prunes_on_its_finished_curves_and_tells_a_pruned_trial_its_last_value() -> None:
    optimizer = Recorder()
    study = Study("k", Objective("acc", "max"), 10, optimizer, pruner="median")
    for i in range(5):
        study.ask(i)
        study.tell(i, 0.9, [(0, 0.5), (1, 0.9)])
    study.ask(5)
    assert study.prune(5, [(0, 0.6)]) is None  # better than the median: acc is maximized
    assert study.prune(5, [(0, 0.6), (1, 0.7)]) == (
        "pruned by the median pruner at step 1: acc best so far 0.7 is worse than the median 0.9 "
        "of 5 finished trials at step 1"
    )
    study.tell(5, None, [(0, 0.6), (1, 0.7)], pruned=True)
    assert optimizer.tells[-1] == ([{"x": 5.0}], [-0.7])  # signed to minimize
    assert (study.pruned, study.best()) == ({5}, (0, 0.9))
    assert study.prune(5, [(0, 0.1)]) is None  # finished: nothing to decide


def test_without_a_pruner_nothing_is_pruned() -> None:
    study = Study("k", Objective("loss"), 10, Recorder())
    study.ask(0)
    assert study.prune(0, [(0, math.inf)]) is None


# --------------------------------------------------------------------------- sessions

CURVE_TEST = """
import pytest

@pytest.mark.space({{"lr": {{"type": "range", "bounds": [0.0, 1.0]}}}}, objective="loss:min")
def test_curve(lr, record_metric, exp_trial):
    for step in range(10):
        record_metric("loss", (lr - 0.3) ** 2 + 1 / (step + 1), step=step)
        {check}
"""


def stored(pytester: pytest.Pytester) -> list:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [t for run in store.runs() for t in store.trials(run.id)]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["sequential", "xdist"])
@pytest.mark.parametrize("pruner", ["median", "halving", "hyperband"])
def test_a_study_prunes_its_trials(pytester: pytest.Pytester, pruner: str, xdist: list[str]) -> None:
    pytester.makepyfile(CURVE_TEST.format(check="exp_trial.prune_if_needed()"))
    args = ("--exp-optimize", "12", "--exp-optimizer", "random", "--exp-pruner", pruner, "-rs", *xdist)
    result = pytester.runpytest(*args)
    trials = stored(pytester)
    pruned = [t for t in trials if t.status == "pruned"]
    assert {t.status for t in trials} == {"passed", "pruned"}
    result.assert_outcomes(passed=12 - len(pruned), skipped=len(pruned))
    for t in pruned:
        reached = t.steps["loss"]
        assert reached == list(range(len(reached)))
        assert len(reached) <= 10  # Hyperband's last bracket judges first at step 9
        assert t.message.startswith(f"pruned by the {pruner} pruner at step {reached[-1]}: loss ")
    result.stdout.fnmatch_lines(
        [f"SKIPPED [[]1[]] test_a_study_prunes_its_trials.py:7: pruned by the {pruner} *"]
    )
    assert all(t.steps["loss"] == list(range(10)) for t in trials if t.status == "passed")


def test_a_pruned_study_resumes_with_its_curves(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CURVE_TEST.format(check="exp_trial.prune_if_needed()"))
    args = ("--exp-optimizer", "random", "--exp-pruner", "median")
    first = pytester.runpytest("--exp-optimize", "8", *args)
    first_pruned = sum(t.status == "pruned" for t in stored(pytester))
    first.assert_outcomes(passed=8 - first_pruned, skipped=first_pruned)
    again = pytester.runpytest("--exp-optimize", "14", *args, "-n", "2")
    again.stdout.fnmatch_lines(["study *: 14 of 14 trials done; resumed: 8 trials of earlier runs replayed*"])
    trials = stored(pytester)
    assert sorted(t.trial for t in trials) == list(range(14))
    # The stored curves count: a trial of the second run is pruned from its first steps on.
    assert any(t.status == "pruned" and t.trial >= 8 for t in trials)


def test_should_prune_is_false_in_a_grid_and_without_a_pruner(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"lr": [0.1, 0.9]}, objective="loss")
        def test_curve(lr, record_metric, exp_trial):
            for step in range(3):
                record_metric("loss", lr * 10 - step, step=step)
                assert not exp_trial.should_prune()
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest("--exp-optimize", "7").assert_outcomes(passed=7)


def test_should_prune_needs_a_stepped_objective(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        CURVE_TEST.format(check="").replace(", step=step", "") + "    exp_trial.should_prune()\n"
    )
    result = pytester.runpytest("--exp-optimize", "1", "--exp-pruner", "median")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *.MetricError: exp_trial.should_prune(): the objective 'loss' has no value with a step yet; "
            "record one with record_metric('loss', value, step=k) first"
        ]
    )


def test_an_unknown_pruner_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CURVE_TEST.format(check=""))
    result = pytester.runpytest("--exp-optimize", "2", "--exp-pruner", "asha")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*error: argument --exp-pruner: invalid value 'asha': "
            "expected one of none, median, halving, hyperband"
        ]
    )


def test_optuna_keeps_a_pruned_trial_as_pruned() -> None:
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    from pytest_exp.space import Space
    from pytest_exp.study import optuna as backend

    optimizer = backend.create(
        Space.from_dict({"x": {"type": "range", "bounds": [0, 1]}}), {"variant": "tpe"}
    )
    asked = optimizer.ask()
    optimizer.tell_pruned(asked, [(0, 3.0), (2, 2.0)])
    optimizer.tell_pruned({"x": 0.5}, [(0, 1.0)])  # a replayed one: added
    (first, second) = optimizer.study.get_trials(deepcopy=False)
    assert (first.state, first.value, first.intermediate_values) == (TrialState.PRUNED, 2.0, {0: 3.0, 2: 2.0})
    assert (second.state, second.params, second.intermediate_values) == (
        TrialState.PRUNED,
        {"x": 0.5},
        {0: 1.0},
    )


def test_the_marker_sets_the_pruner_and_its_warmup(pytester: pytest.Pytester) -> None:
    marked = CURVE_TEST.format(check="exp_trial.prune_if_needed()")
    pytester.makepyfile(
        marked.replace('objective="loss:min"', 'objective="loss:min", pruner="median", prune_warmup=4')
    )
    pytester.runpytest("--exp-optimize", "12", "--exp-optimizer", "random")
    pruned = [t for t in stored(pytester) if t.status == "pruned"]
    assert pruned
    assert all(
        t.steps["loss"][-1] >= 4 and t.message.startswith("pruned by the median pruner") for t in pruned
    )
