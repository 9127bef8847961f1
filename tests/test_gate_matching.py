"""Which baseline entries a run's tests are compared with when pytest's rootdir moves (and with
it every node id): matching by function and config id plus the longest node-id suffix."""

from __future__ import annotations

import json
import shutil

import pytest
from records import trial

from pytest_exp.baseline import AmbiguousMatch, BaselineError, compare, parse_baseline, render_baseline
from pytest_exp.trial import Objective, TrialRecord

# loss = lr * layers; LOSS_SHIFT moves the loss of lr=0.1, layers=2 only.
TRAIN = """
import os, pytest


@pytest.mark.space({"lr": [0.1, 0.01], "layers": [1, 2]}, objective="loss:min")
def test_train(lr, layers, record_metric):
    shift = float(os.environ.get("LOSS_SHIFT", "0")) if (lr, layers) == (0.1, 2) else 0.0
    record_metric("loss", lr * layers + shift)
"""
QUIET = ("--exp-store=none", "-p", "no:cacheprovider")
"""A run whose rootdir moved above the test directory writes nothing there."""


def baseline_with(*functions: str, fingerprint: str = "fp") -> str:
    """A baseline's text with one trial (lr=0.1, loss 1.0) of each function."""
    records = [trial({"lr": 0.1}, function=f, loss=1.0) for f in functions]
    return render_baseline(records, dict.fromkeys(functions, fingerprint), 0, {})


def expect(result: pytest.RunResult, *lines: str) -> None:
    """The lines in order in pytest's output; ``*`` is a wildcard, ``[`` is itself."""
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("saved", "function", "expected"),
    [
        # the baseline's own name always wins
        (["t.py::f", "x/t.py::f"], "t.py::f", "t.py::f"),
        # the rootdir moved up: this run's ids have more leading folders
        (["tests/t.py::f"], "proj/tests/t.py::f", "tests/t.py::f"),
        # the rootdir moved down: fewer
        (["proj/tests/t.py::f"], "tests/t.py::f", "proj/tests/t.py::f"),
        # the longest match wins
        (["t.py::f", "sub/t.py::f"], "proj/sub/t.py::f", "sub/t.py::f"),
        (["t.py::f", "a/b/t.py::f"], "b/t.py::f", "a/b/t.py::f"),
        # whole segments only, and the parametrize part is the function's own
        (["xt.py::f"], "t.py::f", "t.py::f"),
        (["a/t.py::f[x/y]"], "t.py::f[x/y]", "a/t.py::f[x/y]"),
        (["a/t.py::f[b]"], "t.py::f[x/b]", "t.py::f[x/b]"),
        (["a/t.py::C::f"], "t.py::C::f", "a/t.py::C::f"),
        # nothing in common but the file: not the same test
        (["a/t.py::f"], "b/t.py::f", "b/t.py::f"),
    ],
)
def test_a_function_resolves_to_the_longest_node_id_suffix(
    saved: list[str], function: str, expected: str
) -> None:
    assert parse_baseline(baseline_with(*saved), "b.jsonl").resolve(function) == expected


def test_two_equally_long_matches_are_refused_naming_both() -> None:
    baseline = parse_baseline(baseline_with("a/t.py::f", "b/t.py::f"), "ci/b.jsonl")
    with pytest.raises(AmbiguousMatch) as info:
        baseline.resolve("t.py::f")
    assert str(info.value) == (
        "ci/b.jsonl: t.py::f matches 2 tests of the baseline equally well (a/t.py::f, b/t.py::f): "
        "pytest's rootdir is not the one the baseline was saved from; run pytest from that rootdir "
        "(giving the file as --exp-baseline=ci/b.jsonl), or rewrite the baseline with "
        "--exp-baseline=ci/b.jsonl --exp-update-baseline"
    )
    assert baseline.resolve("x/a/t.py::f") == "a/t.py::f"  # a longer id tells them apart


def test_compare_judges_a_moved_test_with_its_entries_and_checks_their_space() -> None:
    baseline = parse_baseline(baseline_with("tests/t.py::f"), "b.jsonl")
    moved = [trial({"lr": 0.1}, function="proj/tests/t.py::f", loss=2.0)]
    [verdict] = compare(moved, baseline, "fp", objective=Objective("loss", "min"))
    assert (verdict.function, verdict.status) == ("proj/tests/t.py::f", "regression")
    with pytest.raises(
        BaselineError, match=r"^b\.jsonl: the baseline was made for a different space of tests/t\.py::f "
    ):
        compare(moved, baseline, "other")


def test_an_update_from_another_rootdir_replaces_the_entries_it_matched() -> None:
    kept = parse_baseline(baseline_with("tests/t.py::f", "tests/t.py::g"), "b.jsonl")
    now: list[TrialRecord] = [trial({"lr": 0.1}, function="proj/tests/t.py::f", loss=2.0)]
    lines = [
        json.loads(line)
        for line in render_baseline(now, {"proj/tests/t.py::f": "fp"}, 0, {}, keep=kept).splitlines()
    ]
    assert lines[0]["tests"] == {"proj/tests/t.py::f": "fp", "tests/t.py::g": "fp"}
    assert [(e["test"], e["metrics"]["loss"]) for e in lines[1:]] == [
        ("proj/tests/t.py::f", 2.0),
        ("tests/t.py::g", 1.0),
    ]


# --------------------------------------------------------------------------- end to end


def test_a_baseline_outside_the_project_given_with_a_space_still_gates(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_train=TRAIN)
    pytester.runpytest("--exp-save-baseline", "bl.jsonl", *QUIET).assert_outcomes(passed=4)
    elsewhere = pytester.path.parent / f"{pytester.path.name}-ci"
    elsewhere.mkdir()
    shutil.move(pytester.path / "bl.jsonl", elsewhere / "bl.jsonl")
    baseline = str(elsewhere / "bl.jsonl")
    monkeypatch.setenv("LOSS_SHIFT", "0.05")
    # Before plugins load, pytest reads PATH as a test path: the rootdir becomes the common folder
    # of the project and the baseline's, and every node id gains the project's folder name.
    result = pytester.runpytest("-n", "2", "--exp-baseline", baseline, *QUIET)
    result.assert_outcomes(passed=3, failed=1)
    project = pytester.path.name
    expect(
        result,
        f"rootdir: {pytester.path.parent}",
        "*",
        f"worse than the baseline {baseline} (1 run):",
        "loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, exact)",
        "*",
        f"{project}/test_train.py::test_train: 4 trials, 4 configurations (3 passed, 1 failed); *",
        "*",
        f"baseline {baseline}: 4 configurations, 4 verdicts: 1 regression, 3 within (1 configuration failed)",
        "  FAIL  lr=0.1, layers=2: loss: 0.25 vs baseline 0.2 (+25.0%), worse than allowed (min, exact)",
    )
    # With "=" pytest sees an option: the rootdir stays, and so do the node ids.
    same = pytester.runpytest("-n", "2", f"--exp-baseline={baseline}", *QUIET)
    same.assert_outcomes(passed=3, failed=1)
    expect(same, f"rootdir: {pytester.path}", "*", "test_train.py::test_train: 4 trials, *")


def test_a_baseline_that_matches_no_test_fails_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_train=TRAIN)
    pytester.runpytest("--exp-save-baseline", "bl.jsonl").assert_outcomes(passed=4)
    (pytester.path / "test_train.py").rename(pytester.path / "test_fit.py")
    result = pytester.runpytest("--exp-baseline", "bl.jsonl")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    expect(
        result,
        "baseline bl.jsonl: 4 configurations, 4 verdicts: 4 missing-config (failed: none is in the baseline)",
        "*",
        "baseline FAIL bl.jsonl: no configuration of this run is in the baseline (it has "
        "test_train.py::test_train; this run has test_fit.py::test_train): a gate that compares nothing "
        "passes anything; add them with --exp-baseline=bl.jsonl --exp-update-baseline",
    )
    quiet = pytester.runpytest("--exp-baseline", "bl.jsonl", "-q")
    assert quiet.ret == pytest.ExitCode.TESTS_FAILED
    expect(quiet, "baseline FAIL bl.jsonl: no configuration of this run is in the baseline *")
    # The update it suggests adds them (and keeps the entries it did not match), and then they pass.
    pytester.runpytest("--exp-baseline", "bl.jsonl", "--exp-update-baseline").assert_outcomes(passed=4)
    again = pytester.runpytest("--exp-baseline", "bl.jsonl")
    assert again.ret == pytest.ExitCode.OK
    expect(again, "baseline bl.jsonl: 4 configurations, 4 verdicts: 4 within (passed)")


def test_a_run_of_configurations_the_baseline_lacks_fails_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_train=TRAIN)
    layers_2 = [f"--deselect=test_train.py::test_train[lr={lr}-layers=2]" for lr in (0.1, 0.01)]
    pytester.runpytest("--exp-save-baseline", "bl.jsonl", *layers_2).assert_outcomes(passed=2, deselected=2)
    result = pytester.runpytest("--exp-baseline", "bl.jsonl", "-k", "layers and 2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    expect(
        result,
        "baseline FAIL bl.jsonl: no configuration of this run is in the baseline (it has other "
        "configurations of test_train.py::test_train): a gate that compares nothing passes anything; "
        "add them with --exp-baseline=bl.jsonl --exp-update-baseline",
    )
    # one configuration it has is enough: the others are new ones, which warn
    lr_01 = [f"test_train.py::test_train[lr=0.1-layers={n}]" for n in (1, 2)]
    mixed = pytester.runpytest("--exp-baseline", "bl.jsonl", *lr_01)
    assert mixed.ret == pytest.ExitCode.OK
    expect(mixed, "baseline bl.jsonl: 2 configurations, 2 verdicts: 1 missing-config, 1 within (passed)")


def test_a_test_that_matches_two_of_the_baseline_s_fails_naming_both(pytester: pytest.Pytester) -> None:
    for folder in ("a", "b"):
        pytester.mkpydir(folder)
        (pytester.path / folder / "test_train.py").write_text(TRAIN)
    pytester.runpytest("--exp-save-baseline", "bl.jsonl").assert_outcomes(passed=8)
    result = pytester.runpytest(
        "--rootdir=a", "a/test_train.py", "--exp-baseline", "bl.jsonl", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=4)
    expect(
        result,
        "bl.jsonl: test_train.py::test_train matches 2 tests of the baseline equally well "
        "(a/test_train.py::test_train, b/test_train.py::test_train): pytest's rootdir is not the one the "
        "baseline was saved from; run pytest from that rootdir (giving the file as --exp-baseline=bl.jsonl), "
        "or rewrite the baseline with --exp-baseline=bl.jsonl --exp-update-baseline",
    )
