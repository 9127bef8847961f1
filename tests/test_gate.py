"""CI regression gates end to end: save a baseline, compare runs with it, update it."""

from __future__ import annotations

import csv
import json

import pytest

from pytest_exp.baseline import read_baseline

# loss = lr * layers, acc = 1 - lr; LOSS_SHIFT moves the loss of lr=0.1, layers=2 only and
# ACC_SHIFT the accuracy of every configuration, so a test can make one metric worse or better.
TRAIN = """
import os, pytest

LOSS_SHIFT = float(os.environ.get("LOSS_SHIFT", "0"))
ACC_SHIFT = float(os.environ.get("ACC_SHIFT", "0"))


@pytest.mark.space({{"lr": [0.1, 0.01], "layers": [1, 2]}}, objective="loss:min"{options})
def test_train(lr, layers, record_metric, exp_trial):
    shift = LOSS_SHIFT if (lr, layers) == (0.1, 2) else 0.0
    record_metric("loss", lr * layers + shift)
    record_metric("acc", 1 - lr + ACC_SHIFT)
"""

BASE = "base.jsonl"
WORSE = "test_train.py::test_train[lr=0.1-layers=2]"
# pytest 9 puts a report's text longrepr (here the baseline's verdict) on its short summary line;
# pytest 8 names the test alone there.
SUMMARY_REASON = " - worse than the baseline b*" if pytest.version_tuple >= (9,) else ""
LAYERS_1 = tuple(f"--deselect=test_train.py::test_train[lr={lr}-layers=2]" for lr in (0.1, 0.01))
"""Runs only the configurations with layers=1."""


def project(pytester: pytest.Pytester, options: str = "") -> None:
    pytester.makepyfile(test_train=TRAIN.format(options=options))


def save(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    result = pytester.runpytest("--exp-save-baseline", BASE, *args)
    result.assert_outcomes(passed=len(read_baseline(pytester.path / BASE).entries) * max(1, _repeat(args)))
    return result


def _repeat(args: tuple[str, ...]) -> int:
    return int(args[args.index("--exp-repeat") + 1]) if "--exp-repeat" in args else 1


def compare(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--exp-baseline", BASE, *args)


def expect(result: pytest.RunResult, *lines: str) -> None:
    """The lines in order in pytest's output; ``*`` is a wildcard, ``[`` is itself."""
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


# --------------------------------------------------------------------------- save and compare


def test_save_writes_a_sorted_baseline_and_an_identical_rerun_passes(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = save(pytester)
    expect(result, "baseline saved: base.jsonl (4 trials of 1 test)")
    lines = (pytester.path / BASE).read_text().splitlines()
    assert json.loads(lines[0])["tests"].keys() == {"test_train.py::test_train"}
    assert [json.loads(line)["params"] for line in lines[1:]] == [
        {"layers": 1, "lr": 0.01},
        {"layers": 1, "lr": 0.1},
        {"layers": 2, "lr": 0.01},
        {"layers": 2, "lr": 0.1},
    ]
    assert json.loads(lines[4]) == {
        "config": json.loads(lines[4])["config"],
        "metrics": {"acc": 0.9, "loss": 0.2},
        "params": {"layers": 2, "lr": 0.1},
        "run": 1,
        "test": "test_train.py::test_train",
    }

    again = compare(pytester)
    again.assert_outcomes(passed=4)
    expect(
        again,
        "rank    lr  layers  loss   acc  *fit_time  runs  baseline  status",
        "   4   0.1       2   0.2   0.9  *     1  within    passed",
        "baseline base.jsonl: 4 configurations, 8 verdicts: 8 within (passed)",
        "",
    )


def test_a_regression_beyond_tolerance_fails_that_configuration(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    result = compare(pytester, "--exp-tolerance", "loss:min:10%,acc:max")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    expect(
        result,
        "*_ test_train[lr=0.1-layers=2] _*",
        "worse than the baseline base.jsonl (1 run):",
        "loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, 10%)",
        "*pytest-exp*",
        "*   0.1       2  0.25   0.9  * regression  failed",
        "baseline base.jsonl: 4 configurations, 8 verdicts: 1 regression, 7 within (1 configuration failed)",
        "  FAIL  lr=0.1, layers=2: loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, 10%)",
        "",
        f"FAILED {WORSE}{SUMMARY_REASON}",
    )


def test_a_change_within_tolerance_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("LOSS_SHIFT", "0.002")  # +1%
    result = compare(pytester, "--exp-tolerance", "loss:min:2%,acc:max", "--exp-baseline-show", "all")
    result.assert_outcomes(passed=4)
    expect(result, "  ok    lr=0.1, layers=2: loss: 0.202 vs baseline 0.2 (+1.0%), within (min, 2%)")


def test_an_improvement_passes_and_is_reported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("LOSS_SHIFT", "-0.1")
    monkeypatch.setenv("ACC_SHIFT", "0.05")
    result = compare(pytester, "--exp-tolerance", "loss:min:10%,acc:max:0.01", "--exp-baseline-show=all")
    result.assert_outcomes(passed=4)
    expect(
        result,
        "baseline base.jsonl: 4 configurations, 8 verdicts: 5 improved, 3 within (passed)",
        "  ok    lr=0.1, layers=1: acc: 0.95 vs baseline 0.9 (+5.6%), better beyond (max, 0.01)",
        "  ok    lr=0.1, layers=2: loss: 0.1 vs baseline 0.2 (-50.0%), better beyond (min, 10%)",
    )


def test_max_is_better_metrics_regress_downwards(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("ACC_SHIFT", "-0.02")
    result = compare(pytester, "--exp-tolerance", "acc:max:0.01")
    result.assert_outcomes(failed=4)
    expect(
        result,
        "worse than the baseline base.jsonl (1 run):",
        "acc: 0.88 vs baseline 0.9 (-2.2%), worse than allowed (max, 0.01)",
    )


def test_without_a_spec_the_objective_is_exact_and_other_metrics_are_reported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("ACC_SHIFT", "-0.01")  # acc has no direction: shown as changed, never failing
    monkeypatch.setenv("LOSS_SHIFT", "-0.01")  # the objective's direction says lower is better
    result = compare(pytester, "--exp-baseline-show", "all")
    result.assert_outcomes(passed=4)
    expect(
        result,
        "baseline base.jsonl: 4 configurations, 8 verdicts: 1 improved, 4 changed, 3 within (passed)",
        "  ok    lr=0.1, layers=2: loss: 0.19 vs baseline 0.2 (-5.0%), better beyond (min, exact)",
        "  warn  lr=0.1, layers=1: acc: 0.89 vs baseline 0.9 (-1.1%), changed (report, exact)",
    )
    monkeypatch.setenv("LOSS_SHIFT", "0.01")
    worse = compare(pytester)
    worse.assert_outcomes(passed=3, failed=1)
    expect(
        worse,
        "baseline base.jsonl: 4 configurations, 8 verdicts: 1 regression, 4 changed, 3 within "
        "(1 configuration failed)",
        "  FAIL  lr=0.1, layers=2: loss: 0.21 vs baseline 0.2 (+5.0%), worse than allowed (min, exact)",
        "",
    )


def test_a_marker_tolerance_beats_the_command_line_for_its_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, ', tolerance="loss:min:50%"')
    save(pytester)
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    result = compare(pytester, "--exp-tolerance", "loss:min:10%,*:max", "--exp-baseline-show", "all")
    result.assert_outcomes(passed=4)
    expect(result, "  ok    lr=0.1, layers=2: loss: 0.25 vs baseline 0.2 (+25.0%), within (min, 50%)")


def test_tolerances_from_the_ini_file_one_spec_per_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    pytester.makeini(
        "[pytest]\nexp_baseline = base.jsonl\nexp_baseline_show = all\n"
        "exp_tolerance =\n    loss:min:10%\n    acc:max\n"
    )
    monkeypatch.setenv("LOSS_SHIFT", "0.01")
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    expect(result, "  ok    lr=0.1, layers=2: loss: 0.21 vs baseline 0.2 (+5.0%), within (min, 10%)")


def test_any_says_changed_and_only_a_direction_says_worse(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("ACC_SHIFT", "0.01")  # up, which any cannot call worse
    result = compare(pytester, "--exp-tolerance", "acc:any")
    result.assert_outcomes(failed=4)
    expect(
        result,
        "worse than the baseline base.jsonl (1 run):",
        "acc: 0.91 vs baseline 0.9 (+1.1%), changed by more than allowed (any, exact)",
    )


def test_a_report_metric_is_listed_and_never_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("ACC_SHIFT", "-0.5")
    result = compare(pytester, "--exp-tolerance", "acc:report:10%", "--exp-baseline-show", "all")
    result.assert_outcomes(passed=4)
    expect(
        result,
        "   1  0.01       1  0.01  0.49  *     1  changed   passed",
        "baseline base.jsonl: 4 configurations, 8 verdicts: 4 changed, 4 within (passed)",
        "  warn  lr=0.1, layers=1: acc: 0.4 vs baseline 0.9 (-55.6%), changed (report, 10%)",
    )
    monkeypatch.setenv("ACC_SHIFT", "-0.05")  # -5.6%: within the 10% a report allows
    within = compare(pytester, "--exp-tolerance", "acc:report:10%", "--exp-baseline-show", "all")
    expect(within, "  ok    lr=0.1, layers=1: acc: 0.85 vs baseline 0.9 (-5.6%), within (report, 10%)")


def test_an_ignored_metric_gives_no_verdict_even_when_strict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, ', tolerance="acc:ignore"')
    save(pytester)
    monkeypatch.setenv("ACC_SHIFT", "5")
    result = compare(pytester, "--exp-baseline-show", "all", "--exp-tolerance", "acc:max")
    result.assert_outcomes(passed=4)  # the marker's ignore beats the command line's acc:max
    expect(
        result,
        "baseline base.jsonl: 4 configurations, 4 verdicts: 4 within (passed)",
        "  ok    lr=0.1, layers=1: loss: 0.1 vs baseline 0.1 (+0.0%), within (min, exact)",
    )
    assert "acc:" not in result.stdout.str()
    pytester.makepyfile(test_train=TRAIN.format(options=', tolerance="acc:ignore"').replace('"acc"', '"f1"'))
    renamed = compare(pytester, "--exp-baseline-strict", "--exp-tolerance", "f1:ignore")
    renamed.assert_outcomes(passed=4)  # acc missing and f1 new: neither is compared
    expect(renamed, "baseline base.jsonl: 4 configurations, 4 verdicts: 4 within (passed)", "")


def test_only_failures_and_missing_entries_are_listed_unless_show_all(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester, *LAYERS_1)
    monkeypatch.setenv("ACC_SHIFT", "0.05")
    result = compare(pytester, "--exp-tolerance", "acc:max")
    result.assert_outcomes(passed=4)
    lines = result.stdout.lines
    title = lines.index(
        "baseline base.jsonl: 4 configurations, 6 verdicts: 2 missing-config, 2 improved, 2 within (passed)"
    )
    assert lines[title + 1 : title + 4] == [
        '  warn  lr=0.1, layers=2: configuration {"layers":2,"lr":0.1} is not in the baseline',
        '  warn  lr=0.01, layers=2: configuration {"layers":2,"lr":0.01} is not in the baseline',
        "",
    ]
    every = compare(pytester, "--exp-tolerance", "acc:max", "--exp-baseline-show", "all").stdout.lines
    title = every.index(lines[title])
    assert every[title + 1 : title + 8] == [
        '  warn  lr=0.1, layers=2: configuration {"layers":2,"lr":0.1} is not in the baseline',
        '  warn  lr=0.01, layers=2: configuration {"layers":2,"lr":0.01} is not in the baseline',
        "  ok    lr=0.1, layers=1: acc: 0.95 vs baseline 0.9 (+5.6%), better beyond (max, exact)",
        "  ok    lr=0.01, layers=1: acc: 1.04 vs baseline 0.99 (+5.1%), better beyond (max, exact)",
        "  ok    lr=0.1, layers=1: loss: 0.1 vs baseline 0.1 (+0.0%), within (min, exact)",
        "  ok    lr=0.01, layers=1: loss: 0.01 vs baseline 0.01 (+0.0%), within (min, exact)",
        "",
    ]


def test_a_bad_show_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest("--exp-baseline-show", "some")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --exp-baseline-show: invalid value 'some': expected one of failures, all"]
    )


# --------------------------------------------------------------------------- repeats, xdist


def test_repeats_compare_the_mean_and_fail_the_last_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.space({"lr": [0.1]}, objective="loss:min", repeat=3)
        def test_train(lr, record_metric, exp_trial):
            shift = float(os.environ.get("SHIFT", "0"))
            record_metric("loss", exp_trial.run + shift * exp_trial.run)
        """
    )
    pytester.runpytest("--exp-save-baseline", BASE).assert_outcomes(passed=3)
    monkeypatch.setenv("SHIFT", "0.05")  # runs 1.05, 2.1, 3.15: mean 2.1, +5% on the mean of 2
    result = compare(pytester, "--exp-tolerance", "loss:min:4%")
    result.assert_outcomes(passed=2, failed=1)
    expect(
        result,
        "*_ test_train[lr=0.1-run=3] _*",
        "worse than the baseline base.jsonl (mean of 3 runs):",
        "loss: 2.1 vs baseline 2 (+5.0%), worse than allowed (min, 4%)",
    )
    # Within 6% the same runs pass: the spread (1.05..3.15) plays no part.
    compare(pytester, "--exp-tolerance", "loss:min:6%").assert_outcomes(passed=3)


def test_regressed_configurations_are_counted_once_each_on_their_last_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, ", repeat=2")
    pytester.runpytest("--exp-save-baseline", BASE).assert_outcomes(passed=8)
    monkeypatch.setenv("ACC_SHIFT", "-0.05")  # acc of every configuration, in both of its runs
    result = compare(pytester, "--exp-tolerance", "acc:max:1%", "-rf")
    result.assert_outcomes(passed=4, failed=4)
    expect(
        result,
        "baseline base.jsonl: 4 configurations, 8 verdicts: 4 regression, 4 within "
        "(4 configurations failed, each in its last run of 2)",
    )
    failed = [line.split(" - ")[0] for line in result.stdout.lines if line.startswith("FAILED ")]
    assert failed == [
        f"FAILED test_train.py::test_train[lr={lr}-layers={n}-run=2]" for lr in (0.1, 0.01) for n in (1, 2)
    ]
    runs = [f"test_train.py::test_train[lr=0.1-layers=1-run={run}]" for run in (1, 2)]
    one = compare(pytester, "--exp-tolerance", "acc:max:1%", *runs)
    one.assert_outcomes(passed=1, failed=1)
    expect(one, "*(1 configuration failed, in its last run of 2)")


def test_deselected_runs_are_judged_at_the_end_and_fail_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, ", repeat=2")
    pytester.runpytest("--exp-save-baseline", BASE).assert_outcomes(passed=8)
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    runs_2 = [f"test_train.py::test_train[lr={lr}-layers={n}-run=2]" for lr in (0.1, 0.01) for n in (1, 2)]
    result = compare(pytester, "-q", *(f"--deselect={nodeid}" for nodeid in runs_2))
    result.assert_outcomes(passed=4, deselected=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    expect(
        result,
        "baseline FAIL test_train.py::test_train [lr=0.1, layers=2]: "
        "loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, exact)",
    )


def test_under_xdist_the_controller_judges_every_worker_s_trials(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, ", repeat=2")
    pytester.runpytest("-n", "2", "--exp-save-baseline", BASE).assert_outcomes(passed=8)
    assert len(read_baseline(pytester.path / BASE).entries) == 4
    compare(pytester, "-n", "2").assert_outcomes(passed=8)
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    result = compare(pytester, "-n", "2", "--exp-tolerance", "loss:min:10%")
    result.assert_outcomes(passed=7, failed=1)
    expect(
        result,
        "worse than the baseline base.jsonl (mean of 2 runs):",
        "loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, 10%)",
    )


# --------------------------------------------------------------------------- missing entries


def test_missing_and_new_entries_warn_by_default_and_fail_when_strict(
    pytester: pytest.Pytester,
) -> None:
    project(pytester)
    save(pytester, *LAYERS_1)
    pytester.makepyfile(test_train=TRAIN.format(options="").replace('"acc"', '"accuracy"'))
    result = compare(pytester)
    result.assert_outcomes(passed=4)
    expect(
        result,
        "baseline base.jsonl: 4 configurations, 8 verdicts: 2 missing-config, 2 missing-metric, "
        "2 new-metric, 2 within (passed)",
        '  warn  lr=0.1, layers=2: configuration {"layers":2,"lr":0.1} is not in the baseline',
        "  warn  lr=0.1, layers=1: acc: not reported (baseline 0.9)",
        "  warn  lr=0.1, layers=1: accuracy: 0.9, not in the baseline",
    )
    strict = compare(pytester, "--exp-baseline-strict")
    strict.assert_outcomes(failed=4)
    expect(
        strict,
        "worse than the baseline base.jsonl (1 run):",
        "accuracy: 0.9, not in the baseline",
        "acc: not reported (baseline 0.9)",
    )


def test_strict_from_the_marker(pytester: pytest.Pytester) -> None:
    project(pytester)
    save(pytester, *LAYERS_1)
    project(pytester, ", baseline_strict=True")
    result = compare(pytester)
    result.assert_outcomes(passed=2, failed=2)
    expect(result, 'configuration {"layers":2,"lr":0.01} is not in the baseline')


def test_a_baseline_of_another_space_is_a_collection_error(pytester: pytest.Pytester) -> None:
    project(pytester)
    save(pytester)
    fingerprint = json.loads((pytester.path / BASE).read_text().splitlines()[0])["tests"]
    pytester.makepyfile(test_train=TRAIN.format(options="").replace("[1, 2]", "[1, 2, 3]"))
    result = compare(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    (saved,) = fingerprint.values()
    expect(
        result,
        "base.jsonl: the baseline was made for a different space of test_train.py::test_train "
        f"(fingerprint {saved}, now *): accept the new space with --exp-baseline base.jsonl "
        "--exp-update-baseline; used by test_train.py::test_train",
    )


# --------------------------------------------------------------------------- update


def test_update_rewrites_the_baseline_and_fails_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    result = compare(pytester, "--exp-update-baseline", "--exp-baseline-show", "all")
    result.assert_outcomes(passed=4)
    expect(
        result,
        "baseline base.jsonl: 4 configurations, 8 verdicts: 1 regression, 7 within "
        "(not enforced: --exp-update-baseline)",
        "  accepted  lr=0.1, layers=2: loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, exact)",
        "  ok        lr=0.1, layers=1: acc: 0.9 vs baseline 0.9 (+0.0%), within (report, exact)",
        "*",
        "baseline updated: base.jsonl (4 trials of 1 test)",
    )
    losses = {
        (e.params["lr"], e.params["layers"]): e.metrics["loss"]
        for runs in read_baseline(pytester.path / BASE).entries.values()
        for e in runs
    }
    assert losses == {(0.01, 1): 0.01, (0.1, 1): 0.1, (0.01, 2): 0.02, (0.1, 2): 0.25}
    compare(pytester).assert_outcomes(passed=4)  # the new values are the baseline now


def test_update_keeps_what_this_run_did_not_measure(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(
        test_eval="""
        import pytest

        @pytest.mark.space({"k": [1, 2]})
        def test_eval(k, record_metric):
            record_metric("score", k)
        """
    )
    pytester.runpytest("--exp-save-baseline", BASE).assert_outcomes(passed=6)
    before = (pytester.path / BASE).read_text().splitlines()
    result = compare(pytester, "--exp-update-baseline", "test_train.py", *LAYERS_1)
    result.assert_outcomes(passed=2, deselected=2)
    after = (pytester.path / BASE).read_text().splitlines()
    assert after[1:] == before[1:]  # same values: every entry kept, the deselected ones included
    assert json.loads(after[0])["tests"].keys() == {"test_eval.py::test_eval", "test_train.py::test_train"}


def test_update_accepts_a_new_space(pytester: pytest.Pytester) -> None:
    project(pytester)
    save(pytester)
    pytester.makepyfile(test_train=TRAIN.format(options="").replace("[1, 2]", "[1, 3]"))
    result = compare(pytester, "--exp-update-baseline")
    result.assert_outcomes(passed=4)
    expect(result, "baseline base.jsonl: the space changed; its entries are replaced, not compared")
    assert sorted(e[0].params["layers"] for e in read_baseline(pytester.path / BASE).entries.values()) == [
        1,
        1,
        3,
        3,
    ]
    compare(pytester).assert_outcomes(passed=4)


def test_update_creates_a_missing_baseline(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = compare(pytester, "--exp-update-baseline")
    result.assert_outcomes(passed=4)
    expect(result, "baseline updated: base.jsonl (4 trials of 1 test)")
    compare(pytester).assert_outcomes(passed=4)


# --------------------------------------------------------------------------- reports


def test_exports_and_json_report_carry_the_verdicts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    for suffix in ("md", "csv", "jsonl"):
        compare(pytester, "--exp-report", f"out.{suffix}", "--json-report", "--json-report-file=r.json")
    md = (pytester.path / "out.md").read_text()
    assert "| rank | lr | layers | loss | acc | fit\\_time | runs | baseline | status |" in md
    assert (
        "**baseline base.jsonl: 4 configurations, 8 verdicts: 1 regression, 7 within "
        "(1 configuration failed)**\n\n"
        "- FAIL  lr=0.1, layers=2: loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, exact)\n"
    ) in md
    with (pytester.path / "out.csv").open() as f:
        rows = {r["test"]: r["baseline"] for r in csv.DictReader(f)}
    assert rows[WORSE] == "regression"
    assert sorted(rows.values()) == ["regression", "within", "within", "within"]
    jsonl = [json.loads(line) for line in (pytester.path / "out.jsonl").read_text().splitlines()]
    assert {r["test"]: r["baseline"] for r in jsonl} == rows
    section = json.loads((pytester.path / "r.json").read_text())["exp"]["tests"]["test_train.py::test_train"]
    assert section["baseline"]["file"] == BASE
    first = section["baseline"]["verdicts"][0]
    assert {k: first[k] for k in ("metric", "value", "baseline", "status", "failed", "tolerance")} == {
        "metric": "loss",
        "value": 0.25,
        "baseline": 0.2,
        "status": "regression",
        "failed": True,
        "tolerance": "min, exact",
    }
    assert [c["baseline"] for c in section["configurations"]] == ["within", "within", "within", "regression"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--exp-tolerance", "loss:min:2%"),
            "--exp-tolerance applies to a baseline comparison: add --exp-baseline PATH "
            "(make the baseline once with --exp-save-baseline PATH)",
        ),
        (
            ("--exp-update-baseline",),
            "--exp-update-baseline applies to a baseline comparison: add --exp-baseline PATH "
            "(make the baseline once with --exp-save-baseline PATH)",
        ),
        (
            ("--exp-baseline", "nope.jsonl"),
            "nope.jsonl: cannot read the baseline (No such file or directory); "
            "make one with --exp-save-baseline nope.jsonl",
        ),
        (
            ("--exp-baseline", "b.jsonl", "--exp-save-baseline", "b.jsonl"),
            "--exp-save-baseline names the baseline this run compares with (b.jsonl): "
            "use --exp-update-baseline to rewrite it from this run",
        ),
        (
            ("--exp-baseline", "b.jsonl", "--exp-optimize", "3"),
            "--exp-baseline and --exp-save-baseline are for grid sweeps; they do not apply to --exp-optimize",
        ),
        (
            ("--exp-baseline", "bad.jsonl"),
            "bad.jsonl:1: not a pytest-exp baseline (no 'pytest-exp-baseline' header)",
        ),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    project(pytester)
    pytester.makefile(".jsonl", b='{"pytest-exp-baseline": 1, "seed": 0, "tests": {}, "versions": {}}\n')
    pytester.makefile(".jsonl", bad='{"seed": 0}\n')
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_bad_tolerance_names_the_spec(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest("--exp-baseline", BASE, "--exp-tolerance", "loss:down")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --exp-tolerance: invalid value 'loss:down': bad tolerance 'loss:down': direction must "
            "be min, max, any, report or ignore (expected NAME:DIRECTION[[]:ALLOWANCE] (e.g. loss:min:2%, "
            "accuracy:max:0.01, loss:min:2%+0.001))",
        ]
    )


def test_a_bad_marker_tolerance_is_a_collection_error(pytester: pytest.Pytester) -> None:
    project(pytester, ', tolerance="loss:min:two"')
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    expect(
        result,
        "invalid space marker keyword tolerance='loss:min:two': bad tolerance 'loss:min:two': allowance "
        "'two' must be a percentage (2%), an amount (0.01) or both (2%+0.01); "
        "used by test_train.py::test_train",
    )


def test_save_without_grid_trials_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--exp-save-baseline", BASE)
    result.assert_outcomes(passed=1)
    assert not (pytester.path / BASE).exists()


def test_a_crashed_worker_s_trial_fails_and_the_others_are_judged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester)
    save(pytester)
    model = pytester.path / "test_train.py"
    crash = '    if (lr, layers) == (0.1, 2) and os.environ.get("CRASH"):\n        os._exit(1)\n'
    model.write_text(model.read_text().replace("    shift = ", crash + "    shift = "))
    monkeypatch.setenv("CRASH", "1")
    result = compare(pytester, "-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    expect(
        result,
        "*   0.1       2     -     -  * missing-metric  crashed",
        "baseline base.jsonl: 4 configurations, 8 verdicts: 2 missing-metric, 6 within (passed)",
        "  warn  lr=0.1, layers=2: acc: not reported (baseline 0.9)",
        "  warn  lr=0.1, layers=2: loss: not reported (baseline 0.2)",
    )


def test_a_configuration_whose_runs_all_skipped_gets_no_verdict(pytester: pytest.Pytester) -> None:
    project(pytester)
    save(pytester)
    model = pytester.path / "test_train.py"
    skip = '    if (lr, layers) == (0.01, 2):\n        pytest.skip("not this one")\n'
    model.write_text(model.read_text().replace("    shift = ", skip + "    shift = "))
    result = compare(pytester)
    result.assert_outcomes(passed=3, skipped=1)
    expect(
        result,
        "*  0.01       2     -     -  *  -         skipped",
        "baseline base.jsonl: 3 configurations, 6 verdicts: 6 within (passed)",
    )


def test_a_stacked_parametrize_makes_sweeps_of_their_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.parametrize("dataset", ["a", "b"])
        @pytest.mark.space({"lr": [0.1, 0.01]}, objective="loss:min")
        def test_train(dataset, lr, record_metric):
            shift = float(os.environ.get("SHIFT", "0")) if dataset == "b" else 0.0
            record_metric("loss", lr + (1 if dataset == "b" else 0) + shift)
        """
    )
    result = pytester.runpytest("-n", "2", "--exp-save-baseline", BASE)
    result.assert_outcomes(passed=4)
    expect(result, "baseline saved: base.jsonl (4 trials of 2 tests)")
    header = json.loads((pytester.path / BASE).read_text().splitlines()[0])
    assert sorted(header["tests"]) == [
        "test_a_stacked_parametrize_makes_sweeps_of_their_own.py::test_train[a]",
        "test_a_stacked_parametrize_makes_sweeps_of_their_own.py::test_train[b]",
    ]
    monkeypatch.setenv("SHIFT", "0.5")
    result = compare(pytester, "-n", "2", "--exp-tolerance", "loss:min:10%")
    result.assert_outcomes(passed=2, failed=2)
    expect(
        result,
        "*::test_train[a]: 2 trials, 2 configurations (2 passed); sorted by loss (min)",
        "*::test_train[b]: 2 trials, 2 configurations (2 failed); sorted by loss (min)",
    )
