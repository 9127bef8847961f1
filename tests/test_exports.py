"""Where results go besides the store: objective settings, JSON report, junit XML, exports."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest

from pytest_exp.store import Store
from pytest_exp.trial import json_params

SWEEP = """
import pytest

@pytest.mark.space({{"lr": [0.1, 0.01, 0.001]}}{marker})
def test_fit(lr, record_metric):
    record_metric("loss", lr * 10)
    record_metric("acc", 1 - lr)
"""


def sweep(pytester: pytest.Pytester, marker: str = "") -> None:
    pytester.makepyfile(test_fit=SWEEP.format(marker=marker))


def ranked_lr(result: pytest.RunResult) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith(("rank ", "# "))) + 2
    return [line.split()[1] for line in lines[start : start + 3]]


@pytest.mark.parametrize(
    ("marker", "args", "ini", "order", "best"),
    [
        ("", [], "", ["0.1", "0.01", "0.001"], None),
        (', objective="loss"', [], "", ["0.001", "0.01", "0.1"], "best: lr=0.001 -> loss 0.01 (min)"),
        (', objective="acc:max"', [], "", ["0.001", "0.01", "0.1"], "best: lr=0.001 -> acc 0.999 (max)"),
        ("", ["--exp-objective", "loss:max"], "", ["0.1", "0.01", "0.001"], "best: lr=0.1 -> loss 1 (max)"),
        ("", [], "exp_objective = acc:min", ["0.1", "0.01", "0.001"], "best: lr=0.1 -> acc 0.9 (min)"),
        (', objective="acc"', ["--exp-objective", "loss:max"], "", ["0.1", "0.01", "0.001"], None),
    ],
)
def test_objective_from_marker_command_line_and_ini(
    pytester: pytest.Pytester, marker: str, args: list[str], ini: str, order: list[str], best: str | None
) -> None:
    sweep(pytester, marker)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)
    assert ranked_lr(result) == order
    if best is not None:
        result.stdout.fnmatch_lines([best])
    else:
        result.stdout.no_fnmatch_line("best:*acc*")


def test_bad_objective_is_a_usage_error(pytester: pytest.Pytester) -> None:
    sweep(pytester)
    result = pytester.runpytest("--exp-objective", "loss:lowest")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --exp-objective: invalid value 'loss:lowest': expected NAME, NAME:min or NAME:max"]
    )


def test_top_cuts_the_table(pytester: pytest.Pytester) -> None:
    sweep(pytester, ', objective="loss"')
    result = pytester.runpytest("--exp-top", "1")
    result.stdout.fnmatch_lines(["   1  0.001  0.01  0.999 *  1  passed", "... 2 more configurations"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_json_report_carries_params_metrics_and_summary(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    sweep(pytester, ', objective="loss"')
    pytester.runpytest(*workers, "--json-report", "--json-report-file=report.json").assert_outcomes(passed=3)
    data = json.loads((pytester.path / "report.json").read_text())
    test = next(t for t in data["tests"] if t["nodeid"] == "test_fit.py::test_fit[lr=0.01]")
    exp = test["metadata"]["exp"]
    assert (exp["params"], exp["run"], exp["metrics"]) == ({"lr": 0.01}, 1, {"loss": [0.1], "acc": [0.99]})
    assert exp["gpus"] == []
    assert test["user_properties"] == [{"loss": 0.1}, {"acc": 0.99}]
    summary = data["exp"]["tests"]["test_fit.py::test_fit"]
    assert (summary["objective"], summary["trials"]) == ("loss:min", 3)
    assert [c["params"]["lr"] for c in summary["configurations"]] == [0.001, 0.01, 0.1]
    assert summary["configurations"][0]["metrics"]["loss"] == {"mean": 0.01, "std": None, "n": 1}
    assert summary["best"] == summary["configurations"][0]["config_id"]
    assert (data["exp"]["store"], data["exp"]["run"], data["exp"]["seed"]) == (".pytest-exp/exp.sqlite", 1, 0)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_toml_dates_reach_reports_and_the_store_as_text(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    # A date is no JSON value and execnet cannot send one: under xdist the run stopped with an
    # internal error, and json-report dropped the metadata with a warning.
    pytester.makefile(".toml", space="day = [1979-05-27, 1979-05-28]\n")
    pytester.makepyfile(
        test_fit="""
        import datetime
        import pytest

        @pytest.mark.space("space.toml", objective="loss")
        def test_fit(day, record_metric):
            assert isinstance(day, datetime.date)
            record_metric("loss", day.day)
        """
    )
    result = pytester.runpytest(*workers, "-W", "error", "--json-report", "--json-report-file=report.json")
    result.assert_outcomes(passed=2)
    tests = json.loads((pytester.path / "report.json").read_text())["tests"]
    assert sorted(t["metadata"]["exp"]["params"]["day"] for t in tests) == ["1979-05-27", "1979-05-28"]
    result.stdout.fnmatch_lines(
        ["   1  1979-05-27    27  *  1  passed", "   2  1979-05-28    28  *  1  passed"]
    )
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        assert sorted(t.params["day"] for t in store.trials(1)) == ["1979-05-27", "1979-05-28"]


def test_json_params_are_json_values() -> None:
    scalars = {"lr": 0.1, "n": 3, "opt": "adam", "on": True, "none": None}
    assert json_params(scalars) is scalars
    day = dt.date(1979, 5, 27)
    given = {"day": day, "grid": (1, [day, {"at": dt.time(7, 32)}]), "big": 10**30, "flag": False}
    assert json_params(given) == {
        "day": "1979-05-27",
        "grid": [1, ["1979-05-27", {"at": "07:32:00"}]],
        "big": 10**30,
        "flag": False,
    }


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_a_metric_recorded_at_teardown_reaches_the_json_report_and_the_store(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile(
        test_fit="""
        import pytest

        @pytest.fixture
        def final(record_metric):
            yield
            record_metric("final", 1.5)

        @pytest.mark.space({"lr": [0.1]})
        def test_fit(lr, final, record_metric):
            record_metric("loss", lr)
        """
    )
    pytester.runpytest(*workers, "--json-report", "--json-report-file=report.json").assert_outcomes(passed=1)
    (test,) = json.loads((pytester.path / "report.json").read_text())["tests"]
    assert test["metadata"]["exp"]["metrics"] == {"loss": [0.1], "final": [1.5]}
    # Properties hold each metric's last value as it is recorded: the teardown's report has both.
    assert test["user_properties"] == [{"loss": 0.1}, {"final": 1.5}]
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        assert [t.metrics for t in store.trials(1)] == [{"loss": [0.1], "final": [1.5]}]


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_junit_metrics_are_properties_without_warnings(pytester: pytest.Pytester, family: str) -> None:
    sweep(pytester)
    result = pytester.runpytest("--junitxml=junit.xml", "-o", f"junit_family={family}", "-W", "error")
    result.assert_outcomes(passed=3, warnings=0)
    case = next(
        c for c in ET.parse(pytester.path / "junit.xml").iter("testcase") if "lr=0.1]" in c.get("name", "")
    )
    assert [(p.get("name"), p.get("value")) for p in case.iter("property")] == [
        ("loss", "1.0"),
        ("acc", "0.9"),
    ]


def test_report_jsonl_and_markdown(pytester: pytest.Pytester) -> None:
    sweep(pytester, ', objective="loss", repeat=2')
    pytester.runpytest("--exp-report", "trials.jsonl").assert_outcomes(passed=6)
    lines = [json.loads(line) for line in (pytester.path / "trials.jsonl").read_text().splitlines()]
    assert len(lines) == 6
    assert {(d["params"]["lr"], d["run"]) for d in lines} == {
        (lr, r) for lr in (0.1, 0.01, 0.001) for r in (1, 2)
    }
    assert all(d["last"] == {"loss": d["params"]["lr"] * 10, "acc": 1 - d["params"]["lr"]} for d in lines)
    pytester.runpytest("--exp-report", "summary.md").assert_outcomes(passed=6)
    md = (pytester.path / "summary.md").read_text()
    assert "## test\\_fit.py::test\\_fit" in md
    assert "| 1 | 0.001 | 0.01 ± 0 | 0.999 ± 0 |" in md


def test_unknown_report_suffix_is_a_usage_error(pytester: pytest.Pytester) -> None:
    sweep(pytester)
    result = pytester.runpytest("--exp-report", "out.xlsx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --exp-report: invalid value 'out.xlsx': "
            "unknown format '.xlsx' (expected .csv, .jsonl or .md)"
        ]
    )
