"""record_metric, the trial records the controller keeps, and the store they land in."""

from __future__ import annotations

import json
import sys

import pytest

from pytest_exp.metrics import MetricError, MetricRecorder, MetricSink, plain_number
from pytest_exp.store import Store

TRAIN = """
import os, pytest

@pytest.mark.space({"lr": [0.1, 0.01, 0.001], "opt": ["adam", "sgd"]}, objective="loss:min")
def test_train(lr, opt, record_metric):
    for step in range(3):
        record_metric("loss", lr * (3 - step) + (0 if opt == "adam" else 1))
    record_metric("accuracy", 1 - lr)
    if lr == 0.01 and opt == "sgd":
        raise RuntimeError("diverged")
"""


def stored(pytester: pytest.Pytester) -> list[dict[str, object]]:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [r.to_dict() for r in store.trials(store.run(None).id)]


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (2.5, 2.5), (True, True), (float("nan"), "nan")],
)
def test_plain_numbers(value: object, expected: object) -> None:
    got = plain_number("m", value)
    assert type(got) is type(value)
    assert repr(got) == "nan" if expected == "nan" else got == expected


def test_numpy_values_become_plain() -> None:
    np = pytest.importorskip("numpy")
    for value, kind in [(np.float32(0.5), float), (np.int64(3), int), (np.bool_(True), bool)]:
        assert type(plain_number("m", value)) is kind
    assert plain_number("m", np.array(2.0)) == 2.0
    with pytest.raises(MetricError):
        plain_number("m", np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            [1, 2],
            "record_metric('loss', ...): expected a number (int, float, bool, numpy scalar or 0-d array), "
            "got list [1, 2]",
        ),
        (
            "0.5",
            "record_metric('loss', ...): expected a number (int, float, bool, numpy scalar or 0-d array), "
            "got str '0.5'",
        ),
        (
            10**400,
            "record_metric('loss', ...): an int of 401 digits is beyond the float range (at most about "
            "1.798e+308); record float(value) or a smaller unit",
        ),
        (
            -(10**309),
            "record_metric('loss', ...): an int of 310 digits is beyond the float range (at most about "
            "1.798e+308); record float(value) or a smaller unit",
        ),
    ],
)
def test_bad_values_are_refused(value: object, message: str) -> None:
    with pytest.raises(MetricError) as e:
        MetricRecorder().record("loss", value)
    assert str(e.value) == message


def test_properties_hold_each_metrics_last_value_in_first_recorded_order() -> None:
    properties: list[tuple[str, object]] = [("user", "x")]
    recorder = MetricRecorder(properties)
    recorder.record("loss", 1.0)
    properties.append(("other", 1))  # record_property in between keeps its place
    recorder.record("acc", 0.5)
    recorder.record("loss", 0.25)
    with pytest.raises(MetricError):
        recorder.record("loss", "bad")
    assert properties == [("user", "x"), ("loss", 0.25), ("other", 1), ("acc", 0.5)]


def test_series_and_nonfinite() -> None:
    recorder = MetricRecorder()
    for v in (1.0, float("inf"), 0.5):
        recorder.record("loss", v)
    recorder.record("acc", 0.9)
    assert recorder.series == {"loss": [1.0, float("inf"), 0.5], "acc": [0.9]}
    assert recorder.nonfinite() == ["metric 'loss' is inf (value 2 of 3)"]
    with pytest.raises(MetricError, match="the name must be a non-empty string"):
        recorder.record("", 1)
    with pytest.raises(MetricError):
        recorder.record("other", [1])
    assert "other" not in recorder.series


# --------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_every_trial_is_stored_with_metrics_and_status(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(test_train=TRAIN)
    result = pytester.runpytest(*workers)
    result.assert_outcomes(passed=5, failed=1)
    trials = {tuple(t["params"].values()): t for t in stored(pytester)}  # type: ignore[union-attr]
    assert len(trials) == 6
    adam = trials[(0.1, "adam")]
    assert adam["metrics"] == {"loss": [0.30000000000000004, 0.2, 0.1], "accuracy": [0.9]}
    assert adam["status"] == "passed"
    assert adam["function"] == "test_train.py::test_train"
    assert adam["test"] == "test_train.py::test_train[lr=0.1-opt=adam]"
    assert adam["duration"] > 0
    assert adam["worker"] in (("gw0", "gw1") if workers else ("main",))
    failed = trials[(0.01, "sgd")]
    assert failed["status"] == "failed"
    assert failed["message"] == "RuntimeError: diverged"
    assert failed["metrics"] == {"loss": [1.03, 1.02, 1.01], "accuracy": [0.99]}


HANDED_OVER = """
import pytest

@pytest.fixture
def model(lr):
    return f"model(lr={lr})"

@pytest.mark.space({"lr": [0.1, 0.01], "layers": [2]})
@pytest.mark.parametrize("data", ["mnist"])
def test_fit(lr, data, model, record_metric, exp_params, request):
    assert request.getfixturevalue("lr") == lr  # the value pytest itself finds
    assert model == f"model(lr={lr})"
    record_metric("lr", lr)
    print(f"got lr={lr} data={data} layers={exp_params['layers']}")
"""


ONE_TRIAL = """
import pytest

@pytest.mark.space({"a": [1]})
def test_it(a, record_metric):
    record_metric("m", a)
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_values_handed_to_the_test_are_the_ones_pytest_gives(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile(test_fit=HANDED_OVER)
    result = pytester.runpytest("-s", *workers)
    result.assert_outcomes(passed=2)
    if not workers:  # a worker's output is not shown
        result.stdout.fnmatch_lines(["*got lr=0.1 data=mnist layers=2*", "*got lr=0.01 data=mnist layers=2*"])
    assert sorted(t["metrics"]["lr"] for t in stored(pytester)) == [[0.01], [0.1]]  # type: ignore[index]


def test_a_record_metric_fixture_of_ones_own_still_wins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def record_metric():
            return lambda name, value: print(f"mine: {name}={value}")
        """
    )
    pytester.makepyfile(ONE_TRIAL)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mine: m=1*"])
    assert [t["metrics"] for t in stored(pytester)] == [{}]


def test_setup_show_shows_what_is_otherwise_handed_over(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_TRIAL)
    result = pytester.runpytest("--setup-show")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["SETUP    S record_metric", "        SETUP    F a[[]1]"])
    assert [t["metrics"] for t in stored(pytester)] == [{"m": [1]}]


def test_nan_metric_fails_the_trial_and_is_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]})
        def test_it(a, record_metric):
            record_metric("loss", float("nan") if a == 2 else 0.5)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["metric 'loss' is nan (value 1 of 1)"])
    trials = stored(pytester)
    assert [t["status"] for t in trials] == ["passed", "failed"]
    assert repr(trials[1]["metrics"]) == "{'loss': [nan]}"


def test_bad_metric_value_fails_the_test_with_the_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_it(record_metric):
            record_metric("loss", "low")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       pytest_exp.metrics.MetricError: record_metric('loss', ...): expected a number "
            "(int, float, bool, numpy scalar or 0-d array), got str 'low'"
        ]
    )


def test_crashed_worker_trial_is_recorded_and_the_rest_complete(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.space({"a": [1, 2, 3, 4]})
        def test_it(a, record_metric):
            record_metric("m", a)
            if a == 3:
                os._exit(1)
        """
    )
    result = pytester.runpytest("-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    trials = {t["params"]["a"]: t for t in stored(pytester)}  # type: ignore[index]
    assert sorted(trials) == [1, 2, 3, 4]
    assert trials[3]["status"] == "crashed"
    assert str(trials[3]["message"]).startswith("worker 'gw")
    assert (
        "crashed while running 'test_crashed_worker_trial_is_recorded_and_the_rest_complete.py::test_it[a=3]'"
        in str(trials[3]["message"])
    )
    assert [trials[a]["status"] for a in (1, 2, 4)] == ["passed"] * 3


def test_killed_pytest_keeps_finished_trials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, signal, pytest

        @pytest.mark.space({"a": [1, 2, 3, 4]})
        def test_it(a, record_metric):
            record_metric("m", a * 10)
            if a == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == -9
    trials = stored(pytester)
    assert [(t["params"], t["metrics"], t["status"]) for t in trials] == [
        ({"a": 1}, {"m": [10]}, "passed"),
        ({"a": 2}, {"m": [20]}, "passed"),
    ]


def test_exp_dir_holds_the_trial_config(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json, pytest

        @pytest.mark.space({"a": [1, 2]}, repeat=2)
        def test_it(a, exp_dir, exp_trial):
            config = json.loads((exp_dir / "config.json").read_text())
            assert config["params"] == {"a": a}
            trial = exp_trial
            assert (config["id"], config["run"], config["seed"]) == (trial.id, trial.run, trial.seed)
            (exp_dir / "model.txt").write_text(str(a))
        """
    )
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)
    files = sorted((pytester.path / ".pytest-exp" / "artifacts").rglob("model.txt"))
    assert len(files) == 4
    assert all(
        json.loads((f.parent / "config.json").read_text())["test"].startswith("test_exp_dir") for f in files
    )


def test_a_stacked_parametrize_keeps_its_sweeps_apart(pytester: pytest.Pytester) -> None:
    # Before, dataset a and b of one lr were one configuration: the table showed them as two
    # runs, and their exp_dir was one folder, the second trial overwriting the first's files.
    pytester.makepyfile(
        """
        import pytest

        class Model:
            pass

        @pytest.mark.parametrize("model", [Model()])
        @pytest.mark.parametrize("dataset", ["a", "b"])
        @pytest.mark.space({"lr": [0.1]}, objective="loss:min")
        def test_train(model, dataset, lr, record_metric, exp_dir):
            (exp_dir / "data.txt").write_text(dataset)
            record_metric("loss", lr + (dataset == "b"))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "test_a_stacked_parametrize_keeps_its_sweeps_apart.py::test_train?a-model0?: "
            "1 trial, 1 configuration (1 passed); sorted by loss (min)",
            "   1   0.1  *     1  passed",
            "test_a_stacked_parametrize_keeps_its_sweeps_apart.py::test_train?b-model0?: "
            "1 trial, 1 configuration (1 passed); sorted by loss (min)",
            "   1   1.1  *     1  passed",
        ]
    )
    files = sorted((pytester.path / ".pytest-exp" / "artifacts").rglob("data.txt"))
    assert sorted(f.read_text() for f in files) == ["a", "b"]
    assert {r["function"] for r in stored(pytester)} == {
        "test_a_stacked_parametrize_keeps_its_sweeps_apart.py::test_train[a-model0]",
        "test_a_stacked_parametrize_keeps_its_sweeps_apart.py::test_train[b-model0]",
    }


def test_runs_without_space_tests_leave_no_store(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(record_metric):\n    record_metric('m', 1)\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (pytester.path / ".pytest-exp").exists()


def test_store_option_and_two_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]})
        def test_it(a, record_metric):
            record_metric("m", a)
        """
    )
    pytester.runpytest("--exp-store", "results").assert_outcomes(passed=2)
    pytester.runpytest("--exp-store", "results", "--exp-seed", "5").assert_outcomes(passed=2)
    with Store.open_existing(pytester.path / "results") as store:
        runs = store.runs()
        assert [(r.id, r.seed, r.trials, r.status) for r in runs] == [
            (1, 0, 2, "finished"),
            (2, 5, 2, "finished"),
        ]
        assert runs[1].argv[:4] == ["--exp-store", "results", "--exp-seed", "5"]
    assert sys.executable


def test_summary_table_ranks_by_objective_and_q_hides_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_train=TRAIN)
    result = pytester.runpytest("-n", "2")
    result.stdout.fnmatch_lines(
        [
            "*- pytest-exp -*",
            "test_train.py::test_train: 6 trials, 6 configurations (5 passed, 1 failed); "
            "sorted by loss (min)",
            "rank     lr  opt    loss  accuracy  *fit_time  runs  status",
            "*",
            "   1  0.001  adam  0.001     0.999  *     1  passed",
            "   2   0.01  adam   0.01      0.99  *     1  passed",
            "   3    0.1  adam    0.1       0.9  *     1  passed",
            "   4  0.001  sgd   1.001     0.999  *     1  passed",
            "   5   0.01  sgd    1.01      0.99  *     1  failed",
            "   6    0.1  sgd     1.1       0.9  *     1  passed",
            "best: lr=0.001, opt=adam -> loss 0.001 (min)",
            "",
            "trials stored in .pytest-exp/exp.sqlite (run 1)",
        ]
    )
    quiet = pytester.runpytest("-q")
    quiet.stdout.no_fnmatch_line("*pytest-exp*")
    quiet.stdout.no_fnmatch_line("best:*")


def test_report_csv_and_junit_properties(pytester: pytest.Pytester) -> None:
    import csv
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_train=TRAIN)
    pytester.runpytest("-n", "2", "--exp-report", "out/trials.csv", "--junitxml", "junit.xml")
    with open(pytester.path / "out" / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    row = next(r for r in rows if r["param.lr"] == "0.1" and r["param.opt"] == "adam")
    assert (row["metric.loss"], row["metric.accuracy"], row["status"]) == ("0.1", "0.9", "passed")
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    props = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    assert props["test_train[lr=0.1-opt=adam]"] == {"loss": "0.1", "accuracy": "0.9"}
    assert len(props) == 6


def test_interrupted_session_keeps_finished_trials_and_marks_the_cut_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2, 3, 4]})
        def test_it(a, record_metric):
            record_metric("m", a)
            if a == 3:
                raise KeyboardInterrupt
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # in-process, it would stop us too
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*3 *interrupted*", "trials stored in .pytest-exp/exp.sqlite (run 1)"])
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        assert store.run(None).status == "interrupted"
        trials = store.trials(1)
    assert [(t.params["a"], t.status, t.metrics) for t in trials] == [
        (1, "passed", {"m": [1]}),
        (2, "passed", {"m": [2]}),
        (3, "interrupted", {"m": [3]}),
    ]


def test_record_metric_outside_a_test_is_an_error() -> None:
    sink = MetricSink()
    with pytest.raises(MetricError) as e:
        sink("loss", 1.0)
    assert str(e.value) == "record_metric('loss', ...) was called outside a running test"
    sink.current = MetricRecorder()
    sink("loss", 1.0)
    assert sink.current.series == {"loss": [1.0]}


def test_a_store_from_an_older_schema_is_reported_not_a_crash(pytester: pytest.Pytester) -> None:
    import sqlite3

    (pytester.path / ".pytest-exp").mkdir()
    db = sqlite3.connect(pytester.path / ".pytest-exp" / "exp.sqlite")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE trials (id INTEGER PRIMARY KEY, test TEXT)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]})
        def test_it(a, record_metric):
            record_metric("m", a)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # its trials were not stored
    result.stdout.fnmatch_lines(
        [
            "*::test_it: 2 trials, 2 configurations (2 passed)",
            "exp: FAILED to store trials: *.pytest-exp/exp.sqlite: written by an older pytest-exp "
            "(no column 'function'); move it away or use another --exp-store; this run fails. Use "
            "--exp-store DIR to store them elsewhere, or --exp-store none to run without storing",
        ]
    )


def test_an_int_beyond_floats_fails_its_trial_and_nothing_else(pytester: pytest.Pytester) -> None:
    # It used to be stored, then crash the summary, the exports and the optimizer.
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]}, objective="m")
        def test_it(a, record_metric):
            record_metric("m", 10**400 if a == 2 else 10**308)
        """
    )
    result = pytester.runpytest("--exp-report", "out.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*MetricError: record_metric('m', ...): an int of 401 digits is beyond*"])
    assert "| 1 |" in (pytester.path / "out.md").read_text()
