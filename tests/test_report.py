"""Unit and property tests of trial summaries, the terminal table and report files (pytest_exp/report.py)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records import TRAIN, trial

from pytest_exp.report import (
    ConfigSummary,
    aggregate,
    csv_rows,
    export,
    markdown,
    metric_names,
    ranked,
    summary_dict,
    table,
)
from pytest_exp.summary import MetricSummary, format_number, summarize, varying
from pytest_exp.trial import Objective, TrialRecord

PROPS = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
NAN = math.nan


# --------------------------------------------------------------------------- realistic sweeps


def sweep_with_repeats() -> list[TrialRecord]:
    """lr x opt, 3 runs each, epochs fixed: a crash, a failure with NaN, a config whose setup errored."""
    records: list[TrialRecord] = []

    def add(lr: float, opt: str, runs: list[tuple[str, float, dict[str, Any]]]) -> None:
        for run, (status, duration, metrics) in enumerate(runs, start=1):
            records.append(trial({"lr": lr, "opt": opt, "epochs": 20}, run, status, duration, **metrics))

    ok = "passed"
    add(0.1, "adam", [(ok, 1.0, {"val_loss": [0.9, 0.50], "acc": 0.80}),
                      (ok, 2.0, {"val_loss": [0.9, 0.55], "acc": 0.81}),
                      (ok, 3.0, {"val_loss": [0.9, 0.60], "acc": 0.82})])  # fmt: skip
    add(0.1, "sgd", [(ok, 2.0, {"val_loss": 0.9, "acc": 0.5}),
                     ("crashed", 0.7, {}),
                     (ok, 4.0, {"val_loss": 1.1, "acc": 0.7})])  # fmt: skip
    add(0.01, "adam", [(ok, 1.5, {"val_loss": [0.5, 0.20], "acc": 0.90}),
                       (ok, 1.5, {"val_loss": [0.5, 0.22], "acc": 0.92}),
                       (ok, 1.5, {"val_loss": [0.5, 0.24], "acc": 0.94})])  # fmt: skip
    add(0.01, "sgd", [(ok, 2.5, {"val_loss": 0.4, "acc": 0.85}),
                      (ok, 2.5, {"val_loss": 0.4, "acc": 0.86}),
                      ("failed", 2.5, {"val_loss": NAN})])  # fmt: skip
    add(0.001, "adam", [(ok, 1.0, {"val_loss": 0.30, "acc": 0.88}),
                        (ok, 1.0, {"val_loss": 0.31, "acc": 0.88}),
                        (ok, 1.0, {"val_loss": 0.32, "acc": 0.88})])  # fmt: skip
    add(0.001, "sgd", [("error", 0.0, {})] * 3)
    return records


def sweep_single_runs() -> list[TrialRecord]:
    """model x dropout, one run each, batch fixed; one test fails its own accuracy threshold."""
    rows = [
        ("mlp", 0.0, "passed", 12.3456, 0.91, 1234567),
        ("mlp", 0.5, "failed", 125.0, 0.42, 1234567),
        ("cnn", 0.0, "passed", 0.000123456, 0.95, 98765),
        ("cnn", 0.5, "passed", 30.0, 0.95, 98765),
    ]
    return [
        trial({"model": m, "dropout": d, "batch": 32}, 1, s, t, acc=a, n_weights=w)
        for m, d, s, t, a, w in rows
    ]


def test_table_with_repeats_min_objective() -> None:
    assert table(sweep_with_repeats(), Objective.parse("val_loss:min")) == "\n".join([
        "tests/test_a.py::test_train: 18 trials, 6 configurations (13 passed, 1 failed, 3 error, 1 crashed);"
        " sorted by val_loss (min)",
        "fixed: epochs=20",
        "rank     lr  opt      val_loss             acc   fit_time  runs  status",
        "----  -----  ----  -----------  --------------  ---------  ----  -------------------",
        "   1   0.01  adam  0.22 ± 0.02   0.92 ± 0.02    1.5 ± 0       3  passed",
        "   2  0.001  adam  0.31 ± 0.01   0.88 ± 0         1 ± 0       3  passed",
        "   3    0.1  adam  0.55 ± 0.05   0.81 ± 0.01      2 ± 1       3  passed",
        "   4    0.1  sgd      1 ± 0.14    0.6 ± 0.14      3 ± 1.4     3  2 passed, 1 crashed",
        "   -   0.01  sgd    nan         0.855 ± 0.0071  2.5 ± 0       3  2 passed, 1 failed",
        "   -  0.001  sgd      -             -             -           3  error",
        "best: lr=0.01, opt=adam -> val_loss 0.22 ± 0.02 (min)",
    ])  # fmt: skip


def test_table_top_cut_and_no_objective_keeps_grid_order() -> None:
    records = sweep_with_repeats()
    assert table(records, Objective("acc", "max"), top=2).splitlines()[2:] == [
        "rank     lr  opt           acc     val_loss  fit_time  runs  status",
        "----  -----  ----  -----------  -----------  --------  ----  ------",
        "   1   0.01  adam  0.92 ± 0.02  0.22 ± 0.02   1.5 ± 0     3  passed",
        "   2  0.001  adam  0.88 ± 0     0.31 ± 0.01     1 ± 0     3  passed",
        "... 4 more configurations",
        "best: lr=0.01, opt=adam -> acc 0.92 ± 0.02 (max)",
    ]
    assert table(records, None, top=3) == "\n".join([
        "tests/test_a.py::test_train: 18 trials, 6 configurations (13 passed, 1 failed, 3 error, 1 crashed)",
        "fixed: epochs=20",
        "#    lr  opt           acc     val_loss   fit_time  runs  status",
        "-  ----  ----  -----------  -----------  ---------  ----  -------------------",
        "1   0.1  adam  0.81 ± 0.01  0.55 ± 0.05    2 ± 1       3  passed",
        "2   0.1  sgd    0.6 ± 0.14     1 ± 0.14    3 ± 1.4     3  2 passed, 1 crashed",
        "3  0.01  adam  0.92 ± 0.02  0.22 ± 0.02  1.5 ± 0       3  passed",
        "... 3 more configurations",
    ])  # fmt: skip


def test_table_single_runs_max_objective() -> None:
    assert table(sweep_single_runs(), Objective.parse("acc:max")) == "\n".join([
        "tests/test_a.py::test_train: 4 trials, 4 configurations (3 passed, 1 failed); sorted by acc (max)",
        "fixed: batch=32",
        "rank  model  dropout   acc  n_weights   fit_time  runs  status",
        "----  -----  -------  ----  ---------  ---------  ----  ------",
        "   1  cnn          0  0.95      98765  0.0001235     1  passed",
        "   2  cnn        0.5  0.95      98765         30     1  passed",
        "   3  mlp          0  0.91    1234567      12.35     1  passed",
        "   4  mlp        0.5  0.42    1234567        125     1  failed",
        "best: model=cnn, dropout=0 -> acc 0.95 (max)",
    ])  # fmt: skip


def test_table_min_objective_that_no_trial_reported() -> None:
    text = table(sweep_single_runs(), Objective("loss"), top=1)
    assert text.splitlines() == [
        "tests/test_a.py::test_train: 4 trials, 4 configurations (3 passed, 1 failed); sorted by loss (min)",
        "fixed: batch=32",
        "rank  model  dropout  loss   acc  n_weights  fit_time  runs  status",
        "----  -----  -------  ----  ----  ---------  --------  ----  ------",
        "   -  mlp          0     -  0.91    1234567     12.35     1  passed",
        "... 3 more configurations",
    ]


def test_table_of_one_configuration_names_it_on_the_best_line() -> None:
    records = [trial({"lr": 0.003, "opt": "adam"}, run, loss=v) for run, v in [(1, 2.0), (2, 4.0)]]
    assert table(records, Objective("loss")) == "\n".join([
        "tests/test_a.py::test_train: 2 trials, 1 configuration (2 passed); sorted by loss (min)",
        "fixed: lr=0.003, opt=adam",
        "rank     loss  fit_time  runs  status",
        "----  -------  --------  ----  ------",
        "   1  3 ± 1.4     1 ± 0     2  passed",
        "best: lr=0.003, opt=adam -> loss 3 ± 1.4 (min)",
    ])  # fmt: skip


def test_table_failed_config_ranks_after_a_clean_one_with_the_same_value() -> None:
    records = [
        trial({"x": 1}, status="failed", loss=0.5),
        trial({"x": 2}, loss=0.5),
        trial({"x": 3}, status="crashed"),
        trial({"x": 4}, loss=NAN),
        trial({"x": 5}, loss=0.1),
    ]
    lines = table(records, Objective("loss")).splitlines()
    assert lines[1:3] == ["rank  x  loss  fit_time  runs  status", "----  -  ----  --------  ----  -------"]
    assert [r.split()[:3] for r in lines[3:-1]] == [
        ["1", "5", "0.1"],
        ["2", "2", "0.5"],
        ["3", "1", "0.5"],
        ["-", "4", "nan"],
        ["-", "3", "-"],
    ]


def test_table_clips_long_parameter_values_and_rejects_bad_top() -> None:
    records = [trial({"path": "data/" + "x" * 50}), trial({"path": "data/y"})]
    first, second = table(records, None).splitlines()[3:]
    assert first.split()[1] == "data/" + "x" * 32 + "..."
    assert len(first.split()[1]) == 40
    assert second.split()[1] == "data/y"
    with pytest.raises(ValueError, match="top must be at least 1"):
        table(records, None, top=0)
    with pytest.raises(ValueError, match="no trials"):
        table([], None)


def test_table_has_no_trailing_spaces() -> None:
    for text in (table(sweep_with_repeats(), Objective("val_loss")), table(sweep_single_runs(), None)):
        assert all(line == line.rstrip() for line in text.splitlines())


# --------------------------------------------------------------------------- aggregation


def test_aggregate_numbers() -> None:
    summaries = aggregate(sweep_with_repeats())
    assert [s.params for s in summaries][:2] == [
        {"lr": 0.1, "opt": "adam", "epochs": 20},
        {"lr": 0.1, "opt": "sgd", "epochs": 20},
    ]
    first, crashed, _, failed, _, errored = summaries
    assert first.config_id == "cfg-lr=0.1-opt=adam-epochs=20"
    assert (first.runs, first.statuses, first.status) == (3, {"passed": 3}, "passed")
    assert list(first.metrics) == ["acc", "val_loss", "fit_time"]
    assert first.metrics["val_loss"].mean == pytest.approx(0.55)
    assert first.metrics["val_loss"].std == pytest.approx(0.05)
    assert first.metrics["val_loss"].n == 3
    assert first.metrics["fit_time"] == MetricSummary(2.0, 1.0, 3)

    # The crashed run reported nothing and its duration is no fit time.
    assert crashed.statuses == {"passed": 2, "crashed": 1}
    assert crashed.status == "2 passed, 1 crashed"
    assert crashed.has_problem
    assert crashed.metrics["val_loss"].n == 2
    assert crashed.metrics["val_loss"].mean == pytest.approx(1.0)
    assert crashed.metrics["val_loss"].std == pytest.approx(math.sqrt(0.02))
    assert crashed.metrics["fit_time"].mean == 3.0

    # A NaN counts and poisons mean and std; the failed run's duration is a fit time.
    loss = failed.metrics["val_loss"]
    assert (loss.n, math.isnan(loss.mean), loss.std is not None and math.isnan(loss.std)) == (3, True, True)
    assert failed.metrics["acc"].n == 2
    assert failed.metrics["fit_time"].n == 3

    assert errored.metrics == {}
    assert math.isnan(errored.value("val_loss"))
    assert errored.status == "error"


def test_aggregate_single_value_has_no_std_and_groups_interleaved_records() -> None:
    a1, b1, a2 = trial({"p": "a"}, 1, loss=1), trial({"p": "b"}, 1, loss=5), trial({"p": "a"}, 2, loss=3)
    a, b = aggregate([a1, b1, a2])
    assert (a.params, a.runs, a.metrics["loss"]) == ({"p": "a"}, 2, MetricSummary(2.0, math.sqrt(2), 2))
    assert (b.params, b.runs, b.metrics["loss"]) == ({"p": "b"}, 1, MetricSummary(5.0, None, 1))
    assert aggregate([]) == []


def test_aggregate_rejects_two_functions() -> None:
    records = [trial({"p": 1}), trial({"p": 1}, function="tests/test_b.py::test_other")]
    with pytest.raises(
        ValueError, match=r"one test function \(got tests/test_a.py::test_train, tests/test_b"
    ):
        aggregate(records)


def test_fit_time_is_automatic_and_skipped_trials_do_not_count() -> None:
    records = [
        trial({"p": 1}, 1, duration=2.0, fit_time=99.0),
        trial({"p": 1}, 2, "skipped", duration=0.0),
        trial({"p": 1}, 3, duration=4.0),
    ]
    (summary,) = aggregate(records)
    assert summary.metrics == {"fit_time": MetricSummary(3.0, math.sqrt(2), 2)}
    assert summary.statuses == {"passed": 2, "skipped": 1}
    assert not summary.has_problem


def test_summarize_infinities_and_bools() -> None:
    inf = summarize([1.0, math.inf])
    assert inf.mean == math.inf
    assert inf.std is not None
    assert math.isnan(inf.std)
    assert math.isnan(summarize([math.inf, -math.inf]).mean)
    assert summarize([NAN]).std is None
    (summary,) = aggregate([trial({}, 1, ok=True), trial({}, 2, ok=False)])
    assert summary.metrics["ok"].mean == 0.5
    with pytest.raises(ValueError, match="at least one value"):
        summarize([])


def test_varying() -> None:
    params = [
        {"lr": 0.1, "opt": "adam", "noise": 0.1, "layers": [64, 64]},
        {"lr": 0.01, "opt": "adam", "noise": 0.1, "layers": [64, 64]},
        {"lr": 0.1, "opt": "adam", "noise": 0.1, "layers": [64, 32], "extra": 1},
    ]
    assert varying(params) == ["lr", "layers", "extra"]
    assert varying(params[:1]) == []
    assert varying([]) == []
    assert varying([{"x": NAN}, {"x": NAN}]) == []


def test_ranked_and_metric_names() -> None:
    def config(name: str, value: float | None, problem: bool = False) -> ConfigSummary:
        metrics = {} if value is None else {"loss": MetricSummary(value, None, 1)}
        status = {"failed": 1} if problem else {"passed": 1}
        return ConfigSummary(name, {}, 1, status, metrics | {"fit_time": MetricSummary(1.0, None, 1)})

    summaries = [
        config("a", None),
        config("b", 2.0, True),
        config("c", NAN),
        config("d", 2.0),
        config("e", 1.0),
    ]
    ids = [s.config_id for s in ranked(summaries, Objective("loss", "min"))]
    assert ids == ["e", "d", "b", "a", "c"]
    ids = [s.config_id for s in ranked(summaries, Objective("loss", "max"))]
    assert ids == ["d", "b", "e", "a", "c"]
    assert ranked(summaries, None) == summaries
    assert metric_names(summaries, Objective("loss")) == ["loss", "fit_time"]
    assert metric_names(summaries, Objective("fit_time")) == ["fit_time", "loss"]
    assert metric_names(summaries, None) == ["loss", "fit_time"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456, "0.1235"),
        (2.0, "2"),
        (-0.0, "0"),
        (1234567.0, "1234567"),
        (1234567.5, "1.235e6"),
        (1.5e-5, "1.5e-5"),
        (1e20, "1e20"),
        (7, "7"),
        (True, "1"),
        (NAN, "nan"),
        (-math.inf, "-inf"),
        (None, "-"),
    ],
)
def test_format_number(value: float | None, text: str) -> None:
    assert format_number(value) == text


# --------------------------------------------------------------------------- report files


def two_functions() -> tuple[dict[str, list[TrialRecord]], dict[str, Objective | None]]:
    other = "tests/test_b.py::test_fit"
    records = {
        TRAIN: [
            trial({"lr": 0.1, "opt": "adam"}, 1, loss=[1.0, 0.5], duration=1.25),
            trial({"lr": 0.1, "opt": "adam"}, 2, loss=[1.0, 0.7], duration=1.75),
            trial({"lr": 0.01, "opt": "adam"}, 1, "failed", message="AssertionError: loss", loss=NAN),
        ],
        other: [
            trial({"layers": [8, 8], "act": "relu|tanh"}, function=other, acc=0.75),
            trial({"layers": [16], "act": "relu|tanh"}, function=other, status="skipped"),
        ],
    }
    return records, {TRAIN: Objective("loss"), other: None}


def test_export_csv(tmp_path: Path) -> None:
    records, objectives = two_functions()
    path = tmp_path / "out" / "report.csv"
    export(records, objectives, path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert header == [
        "test", "function", "config_id", "run", "status", "param.lr", "param.opt", "param.layers",
        "param.act", "metric.acc", "metric.loss", "fit_time", "worker", "gpus", "seed", "message",
    ]  # fmt: skip
    assert rows[0] == {
        "test": "tests/test_a.py::test_train[lr=0.1-opt=adam-run=1]",
        "function": TRAIN,
        "config_id": "cfg-lr=0.1-opt=adam",
        "run": "1",
        "status": "passed",
        "param.lr": "0.1",
        "param.opt": "adam",
        "param.layers": "",
        "param.act": "",
        "metric.acc": "",
        "metric.loss": "0.5",
        "fit_time": "1.25",
        "worker": "main",
        "gpus": "",
        "seed": "101",
        "message": "",
    }
    assert [r["metric.loss"] for r in rows] == ["0.5", "0.7", "nan", "", ""]
    assert rows[2]["message"] == "AssertionError: loss"
    assert rows[3]["param.layers"] == "[8,8]"
    assert rows[3]["param.act"] == "relu|tanh"
    assert rows[4]["status"] == "skipped"
    assert csv_rows([]) == (
        ["test", "function", "config_id", "run", "status", "fit_time", "worker", "gpus", "seed", "message"],
        [],
    )


def test_export_jsonl(tmp_path: Path) -> None:
    records, objectives = two_functions()
    path = tmp_path / "report.jsonl"
    export(records, objectives, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    flat = [r for rs in records.values() for r in rs]
    assert len(lines) == len(flat)
    objects = [json.loads(line) for line in lines]
    assert objects[0] == flat[0].to_dict() | {"last": {"loss": 0.5}}
    assert list(objects[0]) == [*flat[0].to_dict(), "last"]
    assert TrialRecord.from_dict({k: v for k, v in objects[1].items() if k != "last"}) == flat[1]
    assert math.isnan(objects[2]["last"]["loss"])
    assert '"last": {"loss": NaN}' in lines[2]
    assert objects[4]["last"] == {}


def test_export_markdown(tmp_path: Path) -> None:
    records, objectives = two_functions()
    path = tmp_path / "summary.md"
    export(records, objectives, path)
    assert path.read_text(encoding="utf-8") == "\n".join([
        r"## tests/test\_a.py::test\_train",
        "",
        "3 trials, 2 configurations (2 passed, 1 failed); sorted by loss (min).",
        "",
        "Fixed: opt=adam",
        "",
        r"| rank | lr | loss | fit\_time | runs | status |",
        "| ---: | ---: | ---: | ---: | ---: | :--- |",
        "| 1 | 0.1 | 0.6 ± 0.14 | 1.5 ± 0.35 | 2 | passed |",
        "| - | 0.01 | nan | 1 | 1 | failed |",
        "",
        "**best:** lr=0.1 -> loss 0.6 ± 0.14 (min)",
        "",
        r"## tests/test\_b.py::test\_fit",
        "",
        "2 trials, 2 configurations (1 passed, 1 skipped).",
        "",
        r"Fixed: act=relu\|tanh",
        "",
        "| # | layers | acc | fit\\_time | runs | status |",
        "| ---: | :--- | ---: | ---: | ---: | :--- |",
        r"| 1 | \[8,8\] | 0.75 | 1 | 1 | passed |",
        r"| 2 | \[16\] | - | - | 1 | skipped |",
        "",
    ])  # fmt: skip
    assert markdown({}, {}) == ""


@pytest.mark.parametrize("name", ["report.xyz", "report", "report.json"])
def test_export_unknown_suffix(tmp_path: Path, name: str) -> None:
    records, objectives = two_functions()
    suffix = Path(name).suffix
    message = f"--exp-report {tmp_path / name}: unknown format '{suffix}' (expected .csv, .jsonl or .md)"
    with pytest.raises(ValueError, match="unknown format") as info:
        export(records, objectives, tmp_path / name)
    assert str(info.value) == message
    assert not (tmp_path / name).exists()


# --------------------------------------------------------------------------- properties

values_st = st.floats(min_value=-1e100, max_value=1e100, allow_nan=False)
configs_st = st.lists(st.lists(values_st, min_size=1, max_size=4), min_size=1, max_size=5)


@PROPS
@given(configs=configs_st, data=st.data())
def test_aggregate_mean_lies_within_each_configs_values(
    configs: list[list[float]], data: st.DataObject
) -> None:
    records = [trial({"c": c}, run, loss=v) for c, vs in enumerate(configs) for run, v in enumerate(vs, 1)]
    records = data.draw(st.permutations(records))
    summaries = aggregate(records)
    assert sum(s.runs for s in summaries) == len(records)
    assert sorted(s.params["c"] for s in summaries) == list(range(len(configs)))
    for s in summaries:
        vs = configs[s.params["c"]]
        loss = s.metrics["loss"]
        assert loss.n == s.runs == len(vs)
        assert min(vs) <= loss.mean <= max(vs)
        assert loss.std is None if len(vs) == 1 else loss.std is not None and loss.std >= 0


def test_the_best_line_names_no_configuration_that_failed_a_run() -> None:
    # x=1 has the lowest loss, but one of its runs failed: the best line names x=2.
    records = [
        trial({"x": 1}, 1, loss=0.1),
        trial({"x": 1}, 2, status="failed", loss=0.1),
        trial({"x": 2}, 1, loss=0.3),
    ]
    lines = table(records, Objective("loss")).splitlines()
    assert lines[3].split()[:2] == ["1", "1"]  # still ranked first by its value
    assert lines[-1] == "best: x=2 -> loss 0.3 (min)"
    assert summary_dict(records, Objective("loss"))["best"] == records[2].config_id
    only_failed = [trial({"x": 1}, status="failed", loss=0.1)]
    assert table(only_failed, Objective("loss")).splitlines()[-1].startswith("   1")  # no best line
    assert summary_dict(only_failed, Objective("loss"))["best"] is None
