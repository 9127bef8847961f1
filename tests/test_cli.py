"""``python -m pytest_exp``: listing runs and showing stored results (pytest_exp/cli.py)."""

from __future__ import annotations

import csv
import fnmatch
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_exp import report
from pytest_exp.cli import main
from pytest_exp.store import Store
from pytest_exp.trial import Objective, TrialRecord

# Unix times whose local date and time are these, whatever the test machine's time zone.
STARTED_1 = time.mktime((2026, 11, 25, 14, 31, 2, 0, 0, -1))
STARTED_2 = time.mktime((2026, 11, 26, 9, 5, 0, 0, 0, -1))
COMMIT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
FIT = "tests/test_a.py::test_fit"
OTHER = "tests/test_b.py::test_other"


def trial(
    function: str, config: str, params: dict[str, Any], duration: float, **metrics: float
) -> TrialRecord:
    return TrialRecord(
        test=f"{function}[{config}]",
        function=function,
        config_id=config,
        run=1,
        params=params,
        seed=1,
        metrics={name: [value] for name, value in metrics.items()},
        status="passed",
        duration=duration,
    )


RUN_1 = [
    trial(FIT, "c1", {"lr": 0.1, "opt": "adam"}, 1.0, loss=0.5, acc=0.7),
    trial(OTHER, "x1", {"x": 1}, 0.25, score=3.0),
    trial(FIT, "c2", {"lr": 0.01, "opt": "adam"}, 2.0, loss=0.25, acc=0.9),
    trial(FIT, "c3", {"lr": 0.001, "opt": "adam"}, 3.0, loss=0.375, acc=0.8),
    trial(OTHER, "x2", {"x": 2}, 0.5, score=5.0),
]
RUN_2 = [
    trial(FIT, "c1", {"lr": 0.1, "opt": "sgd"}, 1.5, loss=0.75),
    trial(FIT, "c2", {"lr": 0.01, "opt": "sgd"}, 2.5, loss=0.5),
]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``.pytest-exp`` in the current directory, with two runs: run 1 of two test functions at a
    clean commit, run 2 (interrupted) of one function at a dirty commit."""
    states = iter([(COMMIT, False), (COMMIT, True)])
    monkeypatch.setattr("pytest_exp.store.git_state", lambda rootdir: next(states))
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / ".pytest-exp"
    with Store(directory) as s:
        run = s.start_run(seed=0, argv=["-n", "4"], rootdir=str(tmp_path), started=STARTED_1)
        for record in RUN_1:
            s.add_trial(run, record)
        s.finish_run(run, status="finished")
        run = s.start_run(seed=7, argv=["-k", "fit and not slow"], rootdir=str(tmp_path), started=STARTED_2)
        for record in RUN_2:
            s.add_trial(run, record)
        s.finish_run(run, status="interrupted")
    return directory


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status, out, err = run_cli(capsys, *argv)
    assert (status, err) == (0, "")
    return out


HEADER_1 = (
    "run 1 of .pytest-exp: 2026-11-25 14:31:02, finished, 5 trials, seed 0, git 1a2b3c4d, `pytest -n 4`"
)


# --------------------------------------------------------------------------- runs


def test_runs_lists_every_run(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ok(capsys, "runs") == "\n".join([
        "id  started              status       trials  seed  git             command",
        "--  -------------------  -----------  ------  ----  --------------  ----------------------------",
        " 1  2026-11-25 14:31:02  finished          5     0  1a2b3c4d        pytest -n 4",
        " 2  2026-11-26 09:05:00  interrupted       2     7  1a2b3c4d-dirty  pytest -k 'fit and not slow'",
        "",
    ])  # fmt: skip
    assert ok(capsys, "runs", "--store", str(store)) == ok(capsys, "runs")


def test_runs_of_a_store_without_runs_and_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Store(tmp_path / "s").close()
    assert ok(capsys, "runs", "--store", str(tmp_path / "s")) == f"no runs in {tmp_path / 's'}\n"
    monkeypatch.setattr("pytest_exp.store.git_state", lambda rootdir: (None, None))
    with Store(tmp_path / "s") as s:
        s.start_run(seed=2**70, argv=[], rootdir=str(tmp_path), started=STARTED_1)
    assert ok(capsys, "runs", "--store", str(tmp_path / "s")).splitlines()[2:] == [
        " 1  2026-11-25 14:31:02  running       0  1180591620717411303424  -    pytest"
    ]


# --------------------------------------------------------------------------- show


def test_show_latest_run_whole_output(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ok(capsys, "show") == "\n".join([
        "run 2 of .pytest-exp: 2026-11-26 09:05:00, interrupted, 2 trials, seed 7, git 1a2b3c4d-dirty, "
        "`pytest -k 'fit and not slow'`",
        "",
        "tests/test_a.py::test_fit: 2 trials, 2 configurations (2 passed)",
        "fixed: opt=sgd",
        "#    lr  loss  fit_time  runs  status",
        "-  ----  ----  --------  ----  ------",
        "1   0.1  0.75       1.5     1  passed",
        "2  0.01   0.5       2.5     1  passed",
        "",
    ])  # fmt: skip


def test_show_selected_run_has_a_table_per_function_in_first_seen_order(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit, other = [RUN_1[0], RUN_1[2], RUN_1[3]], [RUN_1[1], RUN_1[4]]
    expected = [HEADER_1, "", report.table(fit, None), "", report.table(other, None)]
    assert ok(capsys, "show", "--run", "1") == "\n".join(expected) + "\n"
    assert (
        ok(capsys, "show", "--run", "1", "--store", str(store))
        == "\n".join([expected[0].replace(".pytest-exp", str(store), 1), *expected[1:]]) + "\n"
    )
    assert ok(capsys, "show", "--run", "latest") == ok(capsys, "show", "--run", "2")


def test_show_test_filter(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "show", "--run", "1", "--test", "test_b.py::")
    assert out == "\n".join([HEADER_1, "", report.table([RUN_1[1], RUN_1[4]], None), ""])
    assert ok(capsys, "show", "--run", "1", "--test", "tests/").count("\n\n") == 2


def test_show_objective_min_and_max(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "show", "--run", "1", "--test", "fit", "--objective", "loss")
    assert out.splitlines()[2:] == [
        "tests/test_a.py::test_fit: 3 trials, 3 configurations (3 passed); sorted by loss (min)",
        "fixed: opt=adam",
        "rank     lr   loss  acc  fit_time  runs  status",
        "----  -----  -----  ---  --------  ----  ------",
        "   1   0.01   0.25  0.9         2     1  passed",
        "   2  0.001  0.375  0.8         3     1  passed",
        "   3    0.1    0.5  0.7         1     1  passed",
        "best: lr=0.01 -> loss 0.25 (min)",
    ]
    out = ok(capsys, "show", "--run", "1", "--objective", "score:max", "--top", "1")
    assert out.splitlines()[2:] == [
        *report.table([RUN_1[0], RUN_1[2], RUN_1[3]], Objective("score", "max"), 1).splitlines(),
        "",
        "tests/test_b.py::test_other: 2 trials, 2 configurations (2 passed); sorted by score (max)",
        "rank  x  score  fit_time  runs  status",
        "----  -  -----  --------  ----  ------",
        "   1  2      5       0.5     1  passed",
        "... 1 more configuration",
        "best: x=2 -> score 5 (max)",
    ]
    assert ok(capsys, "show", "--run", "1", "--objective", "loss:MIN") == ok(
        capsys, "show", "--run", "1", "--objective", "loss"
    )


def test_show_top(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fit = [RUN_1[0], RUN_1[2], RUN_1[3]]
    out = ok(capsys, "show", "--run", "1", "--test", "fit", "--top", "2")
    assert out == "\n".join([HEADER_1, "", report.table(fit, None, 2), ""])
    assert "... 1 more configuration" in out
    out = ok(capsys, "show", "--run", "1", "--test", "fit", "--top", "all")
    assert out == "\n".join([HEADER_1, "", report.table(fit, None, None), ""])


def test_show_report_csv(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "show", "--run", "1", "--test", "fit", "--report", "out/run1.csv")
    assert out.endswith("\nwrote out/run1.csv\n")
    assert out.removesuffix("wrote out/run1.csv\n") == ok(capsys, "show", "--run", "1", "--test", "fit")
    with (store.parent / "out" / "run1.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "test", "function", "config_id", "run", "status", "param.lr", "param.opt", "metric.acc",
        "metric.loss", "fit_time", "worker", "gpus", "seed", "message",
    ]  # fmt: skip
    assert [row[:3] + row[5:10] for row in rows[1:]] == [
        ["tests/test_a.py::test_fit[c1]", FIT, "c1", "0.1", "adam", "0.7", "0.5", "1.0"],
        ["tests/test_a.py::test_fit[c2]", FIT, "c2", "0.01", "adam", "0.9", "0.25", "2.0"],
        ["tests/test_a.py::test_fit[c3]", FIT, "c3", "0.001", "adam", "0.8", "0.375", "3.0"],
    ]


def test_show_report_markdown_is_ranked_by_the_objective(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = store.parent / "run1.md"
    out = ok(capsys, "show", "--run", "1", "--objective", "loss", "--report", str(path))
    assert out.endswith(f"  passed\nwrote {path}\n")
    functions = {FIT: [RUN_1[0], RUN_1[2], RUN_1[3]], OTHER: [RUN_1[1], RUN_1[4]]}
    objective = Objective("loss")
    assert path.read_text(encoding="utf-8") == report.markdown(functions, dict.fromkeys(functions, objective))
    assert "sorted by loss (min)" in path.read_text(encoding="utf-8")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "--help")
    assert (status, err) == (0, "")
    assert out.startswith("usage: python -m pytest_exp [-h] COMMAND ...\n")
    assert "runs      list the runs in the store" in out
    status, out, err = run_cli(capsys, "show", "--help")
    assert (status, err) == (0, "")
    for option in ("--store DIR", "--run ID", "--objective NAME[:min|max]", "--top K", "--test", "--report"):
        assert option in out


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["show", "--run", "3"], "no run 3 in .pytest-exp (runs: 1..2)", id="missing-run"),
        pytest.param(
            ["show", "--objective", "loss:up"],
            "argument --objective: invalid value 'loss:up' (expected NAME, NAME:min or NAME:max); "
            "see 'python -m pytest_exp show --help'",
            id="bad-objective",
        ),
        pytest.param(
            ["show", "--report", "out/results.txt"],
            "--report out/results.txt: unknown format '.txt' (expected .csv, .jsonl or .md)",
            id="unknown-suffix",
        ),
        pytest.param(
            ["show", "--run", "1", "--test", "test_c"],
            f"--test test_c: no test function of run 1 matches (functions: {FIT}, {OTHER})",
            id="no-function-matches",
        ),
        pytest.param(
            ["show", "--top", "0"],
            "argument --top: invalid value '0' (expected a positive integer or 'all'); "
            "see 'python -m pytest_exp show --help'",
            id="bad-top",
        ),
        pytest.param(
            ["show", "--run", "first"],
            "argument --run: invalid value 'first' (expected a run id or 'latest'); "
            "see 'python -m pytest_exp show --help'",
            id="bad-run",
        ),
        pytest.param(
            [],
            "the following arguments are required: COMMAND; see 'python -m pytest_exp --help'",
            id="no-command",
        ),
    ],
)
def test_errors(store: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert run_cli(capsys, *argv) == (2, "", f"pytest-exp: error: {message}\n")
    assert not (store.parent / "out").exists()


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    # Recent argparse releases quote the choices ("'runs', 'show'"), older ones do not.
    status, out, err = run_cli(capsys, "list")
    assert (status, out) == (2, "")
    assert fnmatch.fnmatchcase(
        err,
        "pytest-exp: error: argument COMMAND: invalid choice: 'list' (choose from *runs*, *show*); "
        "see 'python -m pytest_exp --help'\n",
    )


def test_missing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in ("runs", "show"):
        assert run_cli(capsys, command) == (
            2,
            "",
            "pytest-exp: error: no pytest-exp store at .pytest-exp (expected .pytest-exp/exp.sqlite); "
            "run from pytest's rootdir, or pass --store DIR\n",
        )
        assert run_cli(capsys, command, "--store", "elsewhere") == (
            2,
            "",
            "pytest-exp: error: no pytest-exp store at elsewhere (expected elsewhere/exp.sqlite)\n",
        )
    assert not (tmp_path / ".pytest-exp").exists()


def test_not_a_store_and_empty_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("pytest_exp.store.git_state", lambda rootdir: (None, None))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "exp.sqlite").write_bytes(b"not a database, " * 100)
    assert run_cli(capsys, "runs", "--store", "junk") == (
        2,
        "",
        "pytest-exp: error: junk/exp.sqlite: not a pytest-exp store (file is not a database)\n",
    )
    with Store(tmp_path / "empty") as s:
        assert run_cli(capsys, "show", "--store", "empty") == (2, "", "pytest-exp: error: no runs in empty\n")
        s.start_run(seed=0, argv=[], rootdir=str(tmp_path))
    assert run_cli(capsys, "show", "--store", "empty") == (
        2,
        "",
        "pytest-exp: error: run 1 of empty has no trials\n",
    )


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_exp", "runs", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr
        == f"pytest-exp: error: no pytest-exp store at {tmp_path} (expected {tmp_path / 'exp.sqlite'})\n"
    )


# --------------------------------------------------------------------------- end to end


def test_show_after_a_pytest_run(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]})
        def test_it(a, record_metric):
            record_metric("m", a)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    capsys.readouterr()
    store = str(pytester.path / ".pytest-exp")
    out = ok(capsys, "show", "--store", store, "--objective", "m:max")
    pytest.LineMatcher(out.splitlines()).fnmatch_lines(
        [
            f"run 1 of {store}: ????-??-?? ??:??:??, finished, 2 trials, seed 0, *, `pytest --basetemp=*`",
            "",
            "test_show_after_a_pytest_run.py::test_it: 2 trials, 2 configurations (2 passed);"
            " sorted by m (max)",
            "rank  a  m  *fit_time  runs  status",
            "----  -  -  *--------  ----  ------",
            "   1  2  2  *[0-9]     1  passed",
            "   2  1  1  *[0-9]     1  passed",
            "best: a=2 -> m 2 (max)",
        ],
        consecutive=True,
    )
    assert len(out.splitlines()) == 8


def test_show_ranks_by_the_stored_objective(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2, 3]}, objective="m:max")
        def test_it(a, record_metric):
            record_metric("m", a)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
    capsys.readouterr()
    assert main(["show", "--store", str(pytester.path / ".pytest-exp")]) == 0
    out = capsys.readouterr().out
    assert "sorted by m (max)" in out
    assert "best: a=3 -> m 3 (max)" in out
