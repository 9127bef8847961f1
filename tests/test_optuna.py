"""The Optuna backend (--exp-optimizer optuna:VARIANT): real pytest sessions, and the points
against a direct Optuna ask-and-tell loop with the same sampler and seed."""

from __future__ import annotations

import math
import sys
import warnings

import pytest

from pytest_exp.space import Space, SpaceError
from pytest_exp.store import Store
from pytest_exp.study import optuna as backend
from pytest_exp.study.study import Study

optuna = pytest.importorskip("optuna")


pytestmark = pytest.mark.usefixtures("warm_optuna")  # see conftest.py


MIXED = """
import pytest

SPACE = {
    "x": {"type": "range", "bounds": [-5, 5]},
    "lr": {"type": "random", "bounds": [1e-4, 1e-1], "prior": "log-uniform"},
    "layers": {"type": "range", "bounds": [1, 4], "dtype": "int"},
    "opt": ["adam", "sgd"],
    "shape": [[1, 2], [3]],
    "epochs": 3,
}

@pytest.mark.space(SPACE, objective="loss")
def test_fit(x, lr, layers, opt, shape, epochs, record_metric, exp_params):
    assert -5 <= x <= 5 and 1e-4 <= lr <= 1e-1 and layers in (1, 2, 3, 4)
    assert opt in ("adam", "sgd") and shape in ([1, 2], [3]) and epochs == 3
    assert all(type(v) in (int, float, str, list) for v in exp_params.values())
    record_metric("loss", (x - 1) ** 2 + layers + (opt == "sgd") + len(shape))
"""


def stored(pytester: pytest.Pytester) -> list:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [t for run in store.runs() for t in store.trials(run.id)]


@pytest.mark.parametrize("variant", ["tpe", "cmaes", "qmc", "random", "nsga2"])
def test_each_variant_runs_a_study_over_a_mixed_space(pytester: pytest.Pytester, variant: str) -> None:
    pytester.makepyfile(test_fit=MIXED)
    result = pytester.runpytest("-W", "error", "--exp-optimize", "6", "--exp-optimizer", f"optuna:{variant}")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["study *: 6 of 6 trials done; new study"])
    assert [t.trial for t in stored(pytester)] == list(range(6))


def direct_sampler(variant: str, seed: int) -> object:
    if variant == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


GP_NEEDS_TORCH = pytest.mark.skipif(backend.missing("gp") is not None, reason="optuna:gp needs torch")


@pytest.mark.parametrize("variant", ["tpe", pytest.param("gp", marks=GP_NEEDS_TORCH)])
def test_the_points_are_a_direct_optuna_loops(pytester: pytest.Pytester, variant: str) -> None:
    pytester.makepyfile(
        test_q="""
        import pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [-5, 5]}, "k": ["a", "b"]}, objective="y")
        def test_q(x, k, record_metric):
            record_metric("y", (x - 1.5) ** 2 + (k == "b"))
        """
    )
    pytester.runpytest(
        "--exp-optimize", "15", "--exp-optimizer", f"optuna:{variant}", "--exp-seed", "3"
    ).assert_outcomes(passed=15)
    ours = [(t.params["x"], t.params["k"]) for t in stored(pytester)]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # constant_liar is experimental in Optuna 4.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(sampler=direct_sampler(variant, 3))
    dists = {
        "x": optuna.distributions.FloatDistribution(-5, 5),
        "k": optuna.distributions.CategoricalDistribution([0, 1]),
    }
    direct = []
    for _ in range(15):
        trial = study.ask(dists)
        x, k = trial.params["x"], ["a", "b"][trial.params["k"]]
        study.tell(trial, (x - 1.5) ** 2 + (k == "b"))
        direct.append((x, k))
    assert ours == direct


def test_pending_points_are_running_trials_the_sampler_sees() -> None:
    # How Optuna's samplers avoid what is in flight: TPE as a constant liar, the others by state.
    from optuna.trial import TrialState

    space = Space.from_dict({"x": {"type": "range", "bounds": [0, 1]}})
    opt = backend.create(space, {"seed": 0, "variant": "tpe"})
    first = opt.ask()
    second = opt.ask([first])
    assert first != second
    foreign = {"x": 0.5}  # in flight, asked by another process: held as running too
    opt.ask([first, second, foreign])
    assert [t.state for t in opt.study.trials] == [TrialState.RUNNING] * 4
    assert opt.study.trials[2].params == foreign
    opt.tell([second, foreign], [1.0, 2.0])
    assert [(t.state, t.value) for t in opt.study.trials[:3]] == [
        (TrialState.RUNNING, None),
        (TrialState.COMPLETE, 1.0),
        (TrialState.COMPLETE, 2.0),
    ]


def test_a_replayed_history_and_failures_reach_the_study() -> None:
    space = Space.from_dict({"x": {"type": "range", "bounds": [0, 1]}, "c": 7})
    opt = backend.create(space, {"seed": 0, "variant": None})  # the default variant: tpe
    study = Study("k", None, 5, opt)
    study.replay(
        [(0, {"x": 0.25, "c": 7}, 1.0), (1, {"x": 0.75, "c": 7}, None), (2, {"x": 0.5, "c": 7}, 3.0)]
    )
    told = [(t.params, t.value) for t in opt.study.trials]
    # The successes first, then the failure, told worse than both (3 + half of 3 - 1).
    assert told == [({"x": 0.25}, 1.0), ({"x": 0.5}, 3.0), ({"x": 0.75}, 4.0)]
    point = study.ask(3)
    assert point["c"] == 7
    assert 0 <= point["x"] <= 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "range", "bounds": [0, 2**70], "dtype": "int"},
            f"int bounds must be within 64-bit integers to optimize, +-{2**63 - 1:,} (got [0, {2**70}])",
        ),
        (
            {"type": "range", "bounds": [0, 1e-310]},
            "bounds too narrow to optimize: high - low is below 2.2e-308 (got [0, 1e-310])",
        ),
    ],
)
def test_bounds_optuna_cannot_search_are_refused(spec: dict, message: str) -> None:
    with pytest.raises(SpaceError) as e:
        backend.check(Space.from_dict({"x": spec}, source="s.toml"))
    assert str(e.value) == f"s.toml: [x] {message}"


def test_any_integer_seed_is_taken() -> None:
    assert backend.random_state(7) == 7
    assert 0 <= backend.random_state(-5) < 2**32
    assert not math.isnan(backend.create(Space.from_dict({"x": [1, 2]}), {"seed": 2**80}).ask()["x"])


def test_a_missing_optuna_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_fit=MIXED)
    monkeypatch.setitem(sys.modules, "optuna", None)  # what find_spec reports for a missing package
    result = pytester.runpytest("--exp-optimize", "2", "--exp-optimizer", "optuna:tpe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ['ERROR: --exp-optimizer optuna:tpe: optuna is not installed: pip install "pytest-exp[optuna]"']
    )


@pytest.mark.skipif(backend.missing("gp") is None, reason="torch is installed: optuna:gp can run")
def test_optuna_gp_without_torch_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fit=MIXED)
    result = pytester.runpytest("--exp-optimize", "2", "--exp-optimizer", "optuna:gp")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --exp-optimizer optuna:gp: optuna:gp needs torch (about 900 MB with its CUDA "
            "packages): pip install torch"
        ]
    )


def test_a_skopt_setting_with_optuna_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fit=MIXED)
    result = pytester.runpytest(
        "--exp-optimize", "2", "--exp-optimizer", "optuna:tpe", "--exp-initial-points", "3"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --exp-initial-points is a setting of the skopt backend, which --exp-optimizer "
            "optuna:tpe does not use"
        ]
    )


def test_xdist_workers_get_distinct_points(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fit=MIXED)
    pytester.runpytest("-n", "2", "--exp-optimize", "6", "--exp-optimizer", "optuna:tpe").assert_outcomes(
        passed=6
    )
    trials = stored(pytester)
    assert sorted(t.trial for t in trials) == list(range(6))
    assert len({(t.params["x"], t.params["lr"]) for t in trials}) == 6
    assert {t.worker for t in trials} == {"gw0", "gw1"}
