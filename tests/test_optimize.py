"""--exp-optimize: real pytest sessions running small studies, in one process and under xdist."""

from __future__ import annotations

import pytest

from pytest_exp.space import Space
from pytest_exp.store import Store
from pytest_exp.trial import Objective

pytestmark = pytest.mark.usefixtures("warm_skopt")  # see conftest.py


QUADRATIC = """
import pytest

@pytest.mark.space({{"x": {{"type": "range", "bounds": [-5, 5]}}, "c": 1}}, objective="{objective}")
def test_quad(x, c, record_metric, exp_trial):
    assert exp_trial.params == {{"x": x, "c": c}}
    record_metric("y", {sign}((x - 1.5) ** 2) + c)
"""


def quadratic(pytester: pytest.Pytester, objective: str = "y:min", sign: str = "") -> None:
    pytester.makepyfile(test_quad=QUADRATIC.format(objective=objective, sign=sign))


def stored(pytester: pytest.Pytester) -> list:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [t for run in store.runs() for t in store.trials(run.id)]


@pytest.mark.parametrize(("objective", "sign"), [("y:min", ""), ("y:max", "-")], ids=["min", "max"])
def test_one_dimensional_quadratic_is_found(pytester: pytest.Pytester, objective: str, sign: str) -> None:
    quadratic(pytester, objective, sign)
    result = pytester.runpytest("--exp-optimize", "12", "--exp-initial-points", "5", "-v")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["*test_quad[[]trial-000[]] PASSED*", "*test_quad[[]trial-011[]] PASSED*"])
    trials = stored(pytester)
    assert [t.trial for t in trials] == list(range(12))
    best = min(trials, key=lambda t: Objective.parse(objective).better(t.last()["y"]))
    assert abs(best.params["x"] - 1.5) < 0.3
    assert all(t.objective == objective and t.study for t in trials)
    result.stdout.fnmatch_lines([f"best: x=* -> y * ({objective[-3:]})"])


def test_same_points_as_skopt_called_directly(pytester: pytest.Pytester) -> None:
    import skopt

    from pytest_exp.study.skopt import OptSettings, dimensions

    quadratic(pytester)
    pytester.runpytest("--exp-optimize", "8", "--exp-initial-points", "4").assert_outcomes(passed=8)
    ours = [t.params["x"] for t in stored(pytester)]
    dims = dimensions(Space.from_dict({"x": {"type": "range", "bounds": [-5, 5]}, "c": 1}))
    opt = skopt.Optimizer(dims, **OptSettings(initial_points=4, seed=0).skopt_kwargs(dims))
    direct = []
    for _ in range(8):
        x = opt.ask()
        opt.tell(x, (x[0] - 1.5) ** 2 + 1)
        direct.append(float(x[0]))
    assert ours == direct


@pytest.mark.parametrize("seed", ["-5", str(2**80)])
def test_any_integer_seed_runs_a_study(pytester: pytest.Pytester, seed: str) -> None:
    # numpy takes seeds from 0 to 2**32 - 1; every trial failed with its ValueError (issue 15).
    quadratic(pytester)
    result = pytester.runpytest("--exp-optimize", "4", "--exp-initial-points", "2", "--exp-seed", seed)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"exp: seed {seed} (reproduce with --exp-seed {seed})"])


def test_seeds_numpy_takes_pass_unchanged_and_others_map_by_hash() -> None:
    from pytest_exp.study.skopt import OptSettings
    from pytest_exp.trial import derive_seed

    assert [OptSettings(seed=s).random_state for s in (0, 7, 2**32 - 1)] == [0, 7, 2**32 - 1]
    assert OptSettings(seed=-5).random_state == derive_seed(-5, "skopt")
    assert OptSettings(seed=2**32).random_state == derive_seed(2**32, "skopt")


def test_xdist_hands_out_distinct_points_and_completes_the_budget(pytester: pytest.Pytester) -> None:
    quadratic(pytester)
    args = ("-n", "2", "--exp-optimize", "10", "--exp-initial-points", "3", "--exp-surrogate", "RF")
    pytester.runpytest(*args).assert_outcomes(passed=10)
    trials = stored(pytester)
    assert sorted(t.trial for t in trials) == list(range(10))
    assert len({t.params["x"] for t in trials}) == 10
    assert {t.worker for t in trials} == {"gw0", "gw1"}


def test_interrupted_study_resumes_with_exactly_the_missing_trials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quad="""
        import os, pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [-5, 5]}})
        def test_quad(x, record_metric):
            record_metric("y", (x - 1.5) ** 2)
            with open("count", "a") as f:
                f.write(".")
            if os.path.getsize("count") == 3 and not os.path.exists("stopped"):
                open("stopped", "w").close()
                raise KeyboardInterrupt  # Ctrl-C during the 3rd trial
        """
    )
    args = (
        "-p",
        "no:cacheprovider",
        "--exp-optimize",
        "6",
        "--exp-initial-points",
        "3",
        "--exp-surrogate",
        "RF",
    )
    first = pytester.runpytest_subprocess(*args, "-v")
    assert first.ret == pytest.ExitCode.INTERRUPTED
    done_first = [t.trial for t in stored(pytester) if t.status == "passed"]
    assert 0 < len(done_first) < 6
    second = pytester.runpytest_subprocess(*args, "-v")
    second.assert_outcomes(passed=6 - len(done_first))
    ran = [line.split("[")[1].split("]")[0] for line in second.outlines if " PASSED" in line]
    assert ran == [f"trial-{i:03d}" for i in range(6) if i not in done_first]
    trials = stored(pytester)
    assert sorted(t.trial for t in trials if t.status == "passed") == list(range(6))
    assert len({t.study for t in trials}) == 1
    third = pytester.runpytest_subprocess(*args, "-rs")
    third.assert_outcomes(skipped=1)
    third.stdout.fnmatch_lines(["*study complete: 6 of 6 trials done in earlier runs*"])


def test_a_resumed_study_says_which_best_is_whose(pytester: pytest.Pytester) -> None:
    # Two "best" lines named different trials: this run's best and the study's (issue 15).
    quadratic(pytester)
    pytester.runpytest("--exp-optimize", "6", "--exp-initial-points", "3").assert_outcomes(passed=6)
    result = pytester.runpytest("--exp-optimize", "8", "--exp-initial-points", "3")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "best of this run: x=* -> y * (min)",
            "study *: 8 of 8 trials done; resumed: 6 trials of earlier runs replayed into the optimizer",
            "best of the study: trial-0* y=*",
        ]
    )
    result.stdout.no_fnmatch_line("best: *")


def test_a_study_resumes_when_the_rootdir_moved(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "--exp-store DIR" with a space: pytest reads DIR as a path before the plugin loads, so the
    # rootdir, and every node id with it, moves; the study began again from scratch (issue 15).
    project = pytester.mkdir("project")
    (project / "test_quad.py").write_text(QUADRATIC.format(objective="y:min", sign=""))
    store = pytester.path / "stores" / "s"
    monkeypatch.chdir(project)
    first = pytester.runpytest(f"--exp-store={store}", "--exp-optimize", "4", "--exp-initial-points", "2")
    first.assert_outcomes(passed=4)
    first.stdout.fnmatch_lines(["rootdir: */project", "study *: 4 of 4 trials done; new study"])
    again = pytester.runpytest("--exp-store", str(store), "--exp-optimize", "6", "--exp-initial-points", "2")
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(
        [
            f"rootdir: {pytester.path}",
            "project/test_quad.py::test_quad: 2 trials*",
            "study *: 6 of 6 trials done; resumed: 4 trials of earlier runs replayed into the optimizer",
        ]
    )
    with Store.open_existing(store) as s:
        trials = [t for run in s.runs() for t in s.trials(run.id)]
    assert [t.trial for t in trials] == list(range(6))
    assert len({t.study for t in trials}) == 1


def test_fresh_and_changed_space_start_new_studies(pytester: pytest.Pytester) -> None:
    quadratic(pytester)
    args = ("--exp-optimize", "3", "--exp-surrogate", "random")
    pytester.runpytest(*args).stdout.fnmatch_lines(["study *: 3 of 3 trials done; new study"])
    extended = pytester.runpytest("--exp-optimize", "5", "--exp-surrogate", "random")
    extended.assert_outcomes(passed=2)
    extended.stdout.fnmatch_lines(
        [
            "study *: 5 of 5 trials done; resumed: 3 trials of earlier runs replayed into the optimizer",
            "best of the study: trial-00* y=* (x=*, c=1)",
        ]
    )
    fresh = pytester.runpytest(*args, "--exp-fresh")
    fresh.assert_outcomes(passed=3)
    fresh.stdout.fnmatch_lines(
        ["study *: 3 of 3 trials done; started over (--exp-fresh); the study of run 2 stays in the store"]
    )
    pytester.makepyfile(test_quad=QUADRATIC.format(objective="y:min", sign="").replace("[-5, 5]", "[-4, 4]"))
    changed = pytester.runpytest(*args)
    changed.assert_outcomes(passed=3)
    changed.stdout.fnmatch_lines(
        [
            "study *: 3 of 3 trials done; the space changed since run 3: "
            "a new study (the old one stays in the store)"
        ]
    )
    assert len({t.study for t in stored(pytester)}) == 3


def test_failing_region_does_not_stall_the_study(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quad="""
        import pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [-5, 5]}})
        def test_quad(x, record_metric):
            if x > 2:
                raise ValueError("diverged")
            record_metric("y", (x + 1) ** 2)
        """
    )
    result = pytester.runpytest("--exp-optimize", "14", "--exp-initial-points", "6", "--exp-seed", "3")
    trials = stored(pytester)
    failed = [t.params["x"] for t in trials if t.status == "failed"]
    assert len(trials) == 14
    assert failed, "the random start should hit the failing region"
    assert len(set(failed)) == len(failed)  # never the same failing point twice
    assert len(failed) <= 7
    best = min(t.last()["y"] for t in trials if t.status == "passed")
    assert best < 0.1
    result.assert_outcomes(passed=14 - len(failed), failed=len(failed))


def test_missing_objective_fails_the_trial_and_says_what_was_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [0, 1]}}, objective="loss")
        def test_named(x, record_metric):
            record_metric("acc", x)

        @pytest.mark.space({"x": {"type": "range", "bounds": [0, 1]}})
        def test_two(x, record_metric):
            record_metric("a", x)
            record_metric("b", x)

        @pytest.mark.space({"x": {"type": "range", "bounds": [0, 1]}})
        def test_single(x, record_metric):
            record_metric("only", x)
        """
    )
    result = pytester.runpytest("--exp-optimize", "2", "--exp-surrogate", "random")
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        [
            "the objective 'loss' was not recorded (recorded: acc); call record_metric('loss', value)",
            'no objective to optimize (recorded: a, b): set objective="NAME[:min|max]" in the marker, '
            "--exp-objective or exp_objective, or record exactly one metric",
        ]
    )
    single = [t for t in stored(pytester) if t.function.endswith("test_single")]
    assert {t.objective for t in single} == {"only:min"}


def test_worker_crash_is_recorded_and_the_study_completes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quad="""
        import os, pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [-5, 5]}})
        def test_quad(x, record_metric):
            with open("count", "a") as f:
                f.write(".")
            if os.path.getsize("count") == 4:
                os._exit(1)  # the worker dies in the middle of the 4th trial
            record_metric("y", x * x)
        """
    )
    args = ("-n", "2", "--exp-optimize", "8", "--exp-surrogate", "RF", "--exp-initial-points", "3")
    result = pytester.runpytest(*args)
    trials = stored(pytester)
    crashed = [t for t in trials if t.status == "crashed"]
    assert len(trials) == 8
    assert len(crashed) == 1
    assert crashed[0].message.startswith("worker 'gw")
    assert sorted(t.trial for t in trials) == list(range(8))
    result.assert_outcomes(passed=7, failed=1)


@pytest.mark.parametrize("option", ["--exp-sample", "--exp-repeat"])
def test_grid_options_are_usage_errors(pytester: pytest.Pytester, option: str) -> None:
    quadratic(pytester)
    result = pytester.runpytest("--exp-optimize", "4", option, "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option} is a grid option and does not apply to --exp-optimize"])


def test_convergence_plot_per_study(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib.pyplot")  # loaded once, here: inner runs cannot reload it
    quadratic(pytester)
    result = pytester.runpytest(
        "--exp-optimize", "4", "--exp-surrogate", "random", "--exp-plot", "plots/c.png"
    )
    result.stdout.fnmatch_lines([f"convergence plot: {pytester.path / 'plots' / 'c.png'}"])
    assert (pytester.path / "plots" / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pytester.makepyfile(
        test_other="""
        import pytest

        @pytest.mark.space({"z": [1, 2, 3]})
        def test_z(z, record_metric):
            record_metric("v", z)
        """
    )
    pytester.runpytest(
        "--exp-optimize", "2", "--exp-surrogate", "random", "--exp-plot", "c.png", "--exp-fresh"
    )
    assert sorted(p.name for p in pytester.path.glob("c-*.png")) == [
        "c-test_other.py_test_z.png",
        "c-test_quad.py_test_quad.png",
    ]


def test_plot_without_matplotlib_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_exp.session

    monkeypatch.setattr(pytest_exp.session, "find_spec", lambda name: None)
    quadratic(pytester)
    result = pytester.runpytest("--exp-optimize", "2", "--exp-plot", "c.png")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --exp-plot needs matplotlib, which is not installed: pip install 'pytest-exp[plot]'"]
    )


def test_settings_from_marker_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nexp_surrogate = random\nexp_initial_points = 2\n")
    pytester.makepyfile(
        test_it="""
        import pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [0, 1]}}, optimize=3, liar="cl_max", acq="lcb")
        def test_marked(x, record_metric):
            record_metric("y", x)

        @pytest.mark.space({"x": [1, 2]})
        def test_grid(x):
            pass
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*test_marked[[]trial-002[]] PASSED*", "*test_grid[[]x=2[]] PASSED*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--exp-surrogate", "gbrt"],
            "argument --exp-surrogate: invalid value 'gbrt': expected one of GP, RF, ET, random",
        ),
        (
            ["--exp-acq", "UCB"],
            "argument --exp-acq: invalid value 'UCB': expected one of EI, PI, LCB, gp_hedge",
        ),
        (
            ["--exp-liar", "min"],
            "argument --exp-liar: invalid value 'min': expected one of cl_min, cl_mean, cl_max",
        ),
        (
            ["--exp-initial-points", "0"],
            "argument --exp-initial-points: invalid value '0': expected an integer >= 1",
        ),
    ],
)
def test_bad_optimizer_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    quadratic(pytester)
    result = pytester.runpytest("--exp-optimize", "2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_grid_keyword_in_a_study_marker_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest

        @pytest.mark.space({"x": [1, 2]}, optimize=2, repeat=3)
        def test_marked(x):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.space(repeat=...) does not apply to an optimization study; "
            "used by test_it.py::test_marked"
        ]
    )


def test_an_ini_baseline_leaves_optimization_runs_alone(pytester: pytest.Pytester) -> None:
    quadratic(pytester)
    pytester.makefile(".jsonl", base='{"pytest-exp-baseline": 1, "seed": 0, "tests": {}, "versions": {}}\n')
    pytester.makeini("[pytest]\nexp_baseline = base.jsonl\n")
    result = pytester.runpytest("--exp-optimize", "2", "--exp-surrogate", "random")
    result.assert_outcomes(passed=2)
    assert not [line for line in result.outlines if line.startswith(("baseline ", "worse than"))]


# --------------------------------------------------------------------------- optimizer dimensions


def test_dimensions() -> None:
    from skopt.space import Categorical, Integer, Real

    from pytest_exp.study.skopt import dimensions

    space = (
        Space()
        .add_value("p1", 1)
        .add_list("opt", ["adam", "sgd"])
        .add_range("layers", 1, 5, dtype=int)
        .add_range("dropout", 0, 0.5, 0.1)
        .add_random("lr", 1e-5, 1e-1, prior="log-uniform", n=4)
        .add_random("batch", 16, 256, dtype="int", prior="log-uniform")
        .add_random("m", 0.5, 0.99)
    )
    dims = dimensions(space)
    assert [d.name for d in dims] == ["opt", "layers", "dropout", "lr", "batch", "m"]
    opt, layers, dropout, lr, batch, m = dims
    assert isinstance(opt, Categorical)
    assert opt.categories == ("adam", "sgd")
    assert isinstance(layers, Integer)
    assert (layers.low, layers.high, layers.prior) == (1, 5, "uniform")  # high is searched too
    assert isinstance(dropout, Real)
    assert (dropout.low, dropout.high, dropout.prior) == (0, 0.5, "uniform")
    assert isinstance(lr, Real)
    assert (lr.low, lr.high, lr.prior) == (1e-5, 1e-1, "log-uniform")
    assert isinstance(batch, Integer)
    assert (batch.low, batch.high, batch.prior) == (16, 256, "log-uniform")
    assert isinstance(m, Real)
    assert (m.low, m.high, m.prior) == (0.5, 0.99, "uniform")
    assert space.fixed() == {"p1": 1}


def test_dimensions_of_a_fixed_space() -> None:
    from pytest_exp.study.skopt import dimensions

    space = Space().add_value("a", 1).add_value("b", "x")
    assert dimensions(space) == []
    assert space.fixed() == {"a": 1, "b": "x"}


@pytest.mark.parametrize(
    "args",
    [
        ("--exp-optimizer", "random"),
        ("--exp-optimizer", "skopt:gp", "--exp-initial-points", "6"),
        ("--exp-optimizer", "optuna:random"),
        ("--exp-optimizer", "optuna:tpe"),
    ],
    ids=["random", "skopt-gp", "optuna-random", "optuna-tpe"],
)
def test_a_resumed_study_proposes_new_points(pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    # A resumed study's optimizer was seeded as the first run's: its random draws (all of random
    # search, and the initial points) began again from the start and re-ran the stored points.
    if "optuna" in args[1]:
        pytest.importorskip("optuna")
    quadratic(pytester)
    pytester.runpytest("--exp-optimize", "3", *args).assert_outcomes(passed=3)
    pytester.runpytest("--exp-optimize", "6", *args).assert_outcomes(passed=3)
    xs = [t.params["x"] for t in stored(pytester)]
    assert len(xs) == len(set(xs)) == 6
