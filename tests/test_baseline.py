"""Tests of baselines: tolerances, the baseline file and comparison (pytest_exp/baseline.py)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records import TRAIN, trial

from pytest_exp.baseline import (
    Baseline,
    BaselineError,
    Verdict,
    compare,
    judge,
    parse_baseline,
    read_baseline,
    render_baseline,
    write_baseline,
)
from pytest_exp.tolerance import (
    DEFAULT_TOLERANCE,
    Tolerance,
    parse_tolerances,
    tolerance_for,
    tolerance_setting,
)
from pytest_exp.trial import Objective, TrialRecord

PROPS = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FP = "fp-train"


def baseline_of(records: list[TrialRecord], fingerprint: str = FP, path: str = "base.jsonl") -> Baseline:
    """A baseline saved from ``records`` and read back, through the file's text."""
    functions = {r.function: fingerprint for r in records}
    return parse_baseline(render_baseline(records, functions, 7, {"pytest-exp": "0.1.0"}), path)


def statuses(verdicts: list[Verdict]) -> list[tuple[str | None, str]]:
    return [(v.metric, v.status) for v in verdicts]


# --------------------------------------------------------------------------- tolerance grammar


def test_parse_relative_absolute_and_both() -> None:
    assert parse_tolerances("loss:min:2%, accuracy:max:0.01,ppl:min:2%+0.001, *:min:5%") == {
        "loss": Tolerance("min", 0.02, 0.0),
        "accuracy": Tolerance("max", 0.0, 0.01),
        "ppl": Tolerance("min", 0.02, 0.001),
        "*": Tolerance("min", 0.05, 0.0),
    }


def test_parse_defaults_and_spelling() -> None:
    assert parse_tolerances("") == {}
    assert parse_tolerances("  ") == {}
    assert parse_tolerances("loss:MIN") == {"loss": Tolerance("min", 0.0, 0.0)}
    assert parse_tolerances("n:any:1") == {"n": Tolerance("any", 0.0, 1.0)}
    assert parse_tolerances("t:report, s:IGNORE, u:report:5%") == {
        "t": Tolerance("report", 0.0, 0.0),
        "s": Tolerance("ignore", 0.0, 0.0),
        "u": Tolerance("report", 0.05, 0.0),
    }
    assert parse_tolerances("loss:min:0.001+2%") == {"loss": Tolerance("min", 0.02, 0.001)}
    assert parse_tolerances("loss:min:1e-3") == {"loss": Tolerance("min", 0.0, 0.001)}
    # a metric name may contain colons: it is everything before the direction
    assert parse_tolerances("val:loss:min:2%,a:b:max") == {
        "val:loss": Tolerance("min", 0.02, 0.0),
        "a:b": Tolerance("max", 0.0, 0.0),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss:down:2%", "bad tolerance 'loss:down:2%': direction must be min, max, any, report or ignore"),
        (
            "loss:2%",
            "bad tolerance 'loss:2%': direction must be min, max, any, report or ignore (expected "
            "NAME:DIRECTION[:ALLOWANCE] (e.g. loss:min:2%, accuracy:max:0.01, loss:min:2%+0.001))",
        ),
        (
            "train_seconds:ignore:2%",
            "bad tolerance 'train_seconds:ignore:2%': ignore takes no allowance (the metric is not compared)",
        ),
        (
            "loss",
            "bad tolerance 'loss': expected NAME:DIRECTION[:ALLOWANCE] "
            "(e.g. loss:min:2%, accuracy:max:0.01, loss:min:2%+0.001)",
        ),
        (":min:2%", "bad tolerance ':min:2%': missing metric name (use * for every metric)"),
        (
            "loss:min:2x",
            "bad tolerance 'loss:min:2x': allowance '2x' must be a percentage (2%), an amount (0.01) "
            "or both (2%+0.01)",
        ),
        (
            "loss:min:2%+",
            "bad tolerance 'loss:min:2%+': allowance '2%+' must be a percentage (2%), an amount (0.01) "
            "or both (2%+0.01)",
        ),
        (
            "loss:min:nan",
            "bad tolerance 'loss:min:nan': allowance 'nan' must be a percentage (2%), an amount (0.01) "
            "or both (2%+0.01)",
        ),
        ("loss:min:-2%", "bad tolerance 'loss:min:-2%': allowance '-2%' must not be negative"),
        ("loss:min:2%+3%", "bad tolerance 'loss:min:2%+3%': allowance '2%+3%' gives a percentage twice"),
        ("loss:min:1+2", "bad tolerance 'loss:min:1+2': allowance '1+2' gives an amount twice"),
        ("loss:min:2%,loss:max", "bad tolerance 'loss:max': loss is given twice"),
        (
            "loss:min:2%,,acc:max",
            "bad tolerance '': expected NAME:DIRECTION[:ALLOWANCE] "
            "(e.g. loss:min:2%, accuracy:max:0.01, loss:min:2%+0.001)",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_tolerances(text)


def test_tolerance_setting_accepts_a_string_or_a_list() -> None:
    assert tolerance_setting("loss:min:2%") == {"loss": Tolerance("min", 0.02, 0.0)}
    assert tolerance_setting(["loss:min:2%", "", "acc:max"]) == {
        "loss": Tolerance("min", 0.02, 0.0),
        "acc": Tolerance("max", 0.0, 0.0),
    }
    with pytest.raises(ValueError, match=r"^expected NAME:DIRECTION\[:ALLOWANCE\] .*, comma-separated$"):
        tolerance_setting(3)


def test_tolerance_texts_and_spec_round_trip() -> None:
    both = Tolerance("min", 0.02, 0.001)
    assert str(both) == "min, 2% or 0.001"
    assert str(Tolerance("max", 0.0, 0.01)) == "max, 0.01"
    assert str(Tolerance("min", 0.07, 0.0)) == "min, 7%"
    assert str(Tolerance("any")) == "any, exact"
    assert str(DEFAULT_TOLERANCE) == "report, exact"
    assert str(Tolerance("report", 0.5)) == "report, 50%"
    assert str(Tolerance("ignore")) == "ignore"
    assert both.spec("loss") == "loss:min:2%+0.001"
    assert DEFAULT_TOLERANCE.spec("n") == "n:report:0"
    assert Tolerance("ignore").spec("n") == "n:ignore"
    for tolerance in (
        both,
        Tolerance("max", 0.07, 0.0),
        Tolerance("any", 0.0, 0.0),
        Tolerance("min", 0.001, 3),
        Tolerance("report", 0.1, 0.0),
        Tolerance("ignore"),
    ):
        assert parse_tolerances(tolerance.spec("m")) == {"m": tolerance}


def test_allowance_is_the_larger_of_relative_and_absolute() -> None:
    tolerance = Tolerance("min", 0.02, 0.001)
    assert tolerance.allowance(1.0) == pytest.approx(0.02)
    assert tolerance.allowance(-1.0) == pytest.approx(0.02)
    assert tolerance.allowance(0.01) == 0.001  # near 0 the absolute part takes over
    assert tolerance.allowance(0.0) == 0.001


# --------------------------------------------------------------------------- precedence


def test_tolerance_precedence() -> None:
    per_test = parse_tolerances("loss:min:1%,*:max:3%")
    defaults = parse_tolerances("loss:min:2%,acc:max:0.5,*:min:5%")
    assert tolerance_for("loss", per_test, defaults) == Tolerance("min", 0.01, 0.0)  # test's own name
    assert tolerance_for("acc", per_test, defaults) == Tolerance("max", 0.0, 0.5)  # a name beats a wildcard
    assert tolerance_for("f1", per_test, defaults) == Tolerance("max", 0.03, 0.0)  # the test's wildcard
    assert tolerance_for("f1", {}, defaults) == Tolerance("min", 0.05, 0.0)  # the run's wildcard
    assert tolerance_for("loss", None, defaults) == Tolerance("min", 0.02, 0.0)


def test_tolerance_fallbacks() -> None:
    # a metric with no spec and no wildcard is reported, never gated; the objective keeps its direction
    assert tolerance_for("acc", None, None) == DEFAULT_TOLERANCE == Tolerance("report", 0.0, 0.0)
    assert tolerance_for("acc", None, None, Objective("acc", "max")) == Tolerance("max", 0.0, 0.0)
    assert tolerance_for("loss", None, None, Objective("acc", "max")) == DEFAULT_TOLERANCE
    # a wildcard spec beats the objective: it was given, the objective's direction was inferred
    assert tolerance_for("acc", None, parse_tolerances("*:min:5%"), Objective("acc", "max")) == Tolerance(
        "min", 0.05, 0.0
    )


# --------------------------------------------------------------------------- judging one value


@pytest.mark.parametrize(
    ("value", "reference", "tolerance", "expected"),
    [
        (0.39, 0.39, Tolerance("min"), "within"),
        (0.397, 0.39, Tolerance("min", 0.02), "within"),  # 2% of 0.39 is 0.0078
        (0.399, 0.39, Tolerance("min", 0.02), "regression"),
        (0.4, 0.39, Tolerance("min", 0.02), "regression"),
        (0.38, 0.39, Tolerance("min", 0.02), "improved"),
        (0.385, 0.39, Tolerance("min", 0.02), "within"),  # better, but within the allowance
        (0.8, 0.9, Tolerance("max", 0.0, 0.05), "regression"),  # max: a drop is worse
        (0.86, 0.9, Tolerance("max", 0.0, 0.05), "within"),
        (0.99, 0.9, Tolerance("max", 0.0, 0.05), "improved"),
        (0.99, 0.9, Tolerance("min", 0.0, 0.05), "regression"),
        (0.8, 0.9, Tolerance("any", 0.0, 0.05), "regression"),  # any: both ways are worse
        (1.0, 0.9, Tolerance("any", 0.0, 0.05), "regression"),
        (0.92, 0.9, Tolerance("any", 0.0, 0.05), "within"),
        (1.0, 0.9, Tolerance("any"), "regression"),
        (1.5, 1.0, Tolerance("min", 0.5), "within"),  # exactly the allowance passes
        (math.nan, 1.0, Tolerance("min", 0.5), "regression"),
        (1.0, math.nan, Tolerance("min"), "improved"),
        (1.0, math.nan, Tolerance("any"), "regression"),
        (math.nan, math.nan, Tolerance("min"), "within"),
        (math.inf, 1.0, Tolerance("min", 0.5), "regression"),
        (math.inf, math.inf, Tolerance("min"), "within"),
        # report: judged as any is, a change beyond the allowance is "changed" (never a regression)
        (0.2079, 0.3907, Tolerance("report"), "changed"),
        (0.5, 0.3907, Tolerance("report"), "changed"),
        (0.39, 0.39, Tolerance("report"), "within"),
        (0.92, 0.9, Tolerance("report", 0.0, 0.05), "within"),
        (math.nan, 1.0, Tolerance("report"), "changed"),
        (1.0, math.nan, Tolerance("report"), "changed"),
        (math.nan, math.nan, Tolerance("report"), "within"),
    ],
)
def test_judge(value: float, reference: float, tolerance: Tolerance, expected: str) -> None:
    assert judge(value, reference, tolerance) == expected


def test_relative_and_absolute_combine_as_the_larger_allowance() -> None:
    tolerance = Tolerance("min", 0.02, 0.01)
    # baseline 1.0: 2% (0.02) is the larger allowance
    assert judge(1.015, 1.0, tolerance) == "within"
    assert judge(1.025, 1.0, tolerance) == "regression"
    # baseline 0.1: the absolute 0.01 is larger than 2% (0.002)
    assert judge(0.105, 0.1, tolerance) == "within"
    assert judge(0.115, 0.1, tolerance) == "regression"


# --------------------------------------------------------------------------- compare


def test_compare_uses_the_mean_over_runs() -> None:
    saved = [trial({"lr": 0.1}, run, loss=v) for run, v in enumerate([0.38, 0.40], start=1)]
    now = [trial({"lr": 0.1}, run, loss=v) for run, v in enumerate([0.36, 0.48, 0.39], start=1)]
    [verdict] = compare(now, baseline_of(saved), FP, defaults=parse_tolerances("loss:min:2%"))
    assert verdict.value == pytest.approx(0.41)
    assert verdict.baseline == pytest.approx(0.39)
    assert verdict.status == "regression"
    assert verdict.failed
    assert verdict.message() == "loss: 0.41 vs baseline 0.39 (+5.1%), worse than allowed (min, 2%)"
    # one run alone would have passed: only the mean counts, never single runs or the spread
    [alone] = compare(now[2:], baseline_of(saved), FP, defaults=parse_tolerances("loss:min:2%"))
    assert alone.status == "within"
    assert not alone.failed


def test_compare_uses_last_values_and_skips_unmeasured_trials() -> None:
    saved = [trial({"lr": 0.1}, loss=[0.9, 0.5])]
    now = [
        trial({"lr": 0.1}, 1, loss=[0.2, 0.5]),
        trial({"lr": 0.1}, 2, "skipped"),
        trial({"lr": 0.2}, 1, "skipped"),
        trial({"lr": 0.1}, 3, "failed", loss=0.5),  # a failed trial's value is still real
    ]
    assert statuses(compare(now, baseline_of(saved), FP)) == [("loss", "within")]


def test_compare_messages_and_direction() -> None:
    saved = [trial({"lr": 0.1}, loss=0.390, accuracy=0.9, n=1000)]
    now = [trial({"lr": 0.1}, loss=0.300, accuracy=0.95, n=1000)]
    tolerances = parse_tolerances("loss:min:2%,accuracy:max:0.01")
    verdicts = compare(now, baseline_of(saved), FP, defaults=tolerances)
    assert [v.message() for v in verdicts] == [
        "accuracy: 0.95 vs baseline 0.9 (+5.6%), better beyond (max, 0.01)",
        "loss: 0.3 vs baseline 0.39 (-23.1%), better beyond (min, 2%)",
        "n: 1000 vs baseline 1000 (+0.0%), within (report, exact)",
    ]
    assert not any(v.failed for v in verdicts)
    worse = [trial({"lr": 0.1}, loss=0.300, accuracy=0.85, n=1000)]
    [accuracy, _, _] = compare(worse, baseline_of(saved), FP, defaults=tolerances)
    assert accuracy.status == "regression"
    assert accuracy.message() == "accuracy: 0.85 vs baseline 0.9 (-5.6%), worse than allowed (max, 0.01)"


def test_compare_change_against_a_zero_baseline() -> None:
    saved = [trial({"lr": 0.1}, errors=0)]
    [verdict] = compare([trial({"lr": 0.1}, errors=2)], baseline_of(saved), FP)
    assert verdict.change is None
    assert verdict.message() == "errors: 2 vs baseline 0 (+2), changed (report, exact)"
    assert not verdict.failed
    [gated] = compare(
        [trial({"lr": 0.1}, errors=2)], baseline_of(saved), FP, defaults=parse_tolerances("*:any")
    )
    assert gated.message() == "errors: 2 vs baseline 0 (+2), changed by more than allowed (any, exact)"
    assert gated.failed


def test_a_metric_without_a_spec_is_reported_and_an_ignored_one_not_compared() -> None:
    # The case: a timing that fell by 47% is a change to show, neither worse nor a failure.
    saved = [trial({"lr": 0.1}, loss=0.4, cv_fit_time=0.3907, seed_used=1, gone=1.0)]
    now = [trial({"lr": 0.1}, loss=0.4, cv_fit_time=0.2079, seed_used=2, new=3.0)]
    ignored = parse_tolerances("seed_used:ignore, gone:ignore, new:ignore")
    verdicts = compare(
        now, baseline_of(saved), FP, defaults=ignored, objective=Objective("loss", "min"), strict=True
    )
    assert [v.message() for v in verdicts] == [
        "cv_fit_time: 0.2079 vs baseline 0.3907 (-46.8%), changed (report, exact)",
        "loss: 0.4 vs baseline 0.4 (+0.0%), within (min, exact)",
    ]
    assert [v.failed for v in verdicts] == [False, False]
    # strict still fails a report metric that went missing: presence is strict's, not the direction's
    [missing] = compare(
        [trial({"lr": 0.1}, loss=0.4)], baseline_of(saved[:1]), FP, defaults=ignored, strict=True
    )[1:]
    assert (missing.metric, missing.status, missing.failed) == ("cv_fit_time", "missing-metric", True)


def test_per_test_tolerance_beats_defaults() -> None:
    saved = [trial({"lr": 0.1}, loss=1.0)]
    now = [trial({"lr": 0.1}, loss=1.03)]
    defaults = parse_tolerances("loss:min:2%")
    assert statuses(compare(now, baseline_of(saved), FP, defaults=defaults)) == [("loss", "regression")]
    per_test = parse_tolerances("loss:min:5%")
    assert statuses(compare(now, baseline_of(saved), FP, defaults=defaults, per_test=per_test)) == [
        ("loss", "within")
    ]


def test_missing_entries_warn_by_default_and_fail_when_strict() -> None:
    saved = [trial({"lr": 0.1}, loss=0.5, acc=0.8), trial({"lr": 0.3}, loss=0.7)]
    now = [trial({"lr": 0.1}, loss=0.5, f1=0.6), trial({"lr": 0.2}, loss=0.4)]  # lr=0.3 not run: no verdict
    tolerances = parse_tolerances("*:max")
    verdicts = compare(now, baseline_of(saved), FP, defaults=tolerances)
    assert statuses(verdicts) == [
        ("f1", "new-metric"),
        ("loss", "within"),
        ("acc", "missing-metric"),
        (None, "missing-config"),
    ]
    assert [v.failed for v in verdicts] == [False, False, False, False]
    assert [v.message() for v in verdicts] == [
        "f1: 0.6, not in the baseline",
        "loss: 0.5 vs baseline 0.5 (+0.0%), within (max, exact)",
        "acc: not reported (baseline 0.8)",
        'configuration {"lr":0.2} is not in the baseline',
    ]
    strict = compare(now, baseline_of(saved), FP, defaults=tolerances, strict=True)
    assert [v.failed for v in strict] == [True, False, True, True]
    assert [v.status for v in strict] == [v.status for v in verdicts]


def test_a_function_missing_from_the_baseline_is_missing_configs() -> None:
    saved = [trial({"lr": 0.1}, loss=0.5)]
    other = [trial({"lr": 0.1}, function="tests/test_b.py::test_fit", loss=0.5)]
    verdicts = compare(other, baseline_of(saved), "fp-fit")
    assert statuses(verdicts) == [(None, "missing-config")]
    assert verdicts[0].function == "tests/test_b.py::test_fit"


def test_compare_takes_one_function() -> None:
    records = [trial({"lr": 0.1}, loss=1.0), trial({"lr": 0.1}, function="t::f", loss=1.0)]
    with pytest.raises(ValueError, match=r"^compare\(\) takes the trials of one test function \(got "):
        compare(records, baseline_of(records[:1]), FP)
    assert compare([], baseline_of(records[:1]), FP) == []


def test_fingerprint_mismatch_is_a_clear_error() -> None:
    saved = [trial({"lr": 0.1}, loss=1.0)]
    with pytest.raises(BaselineError) as info:
        compare(saved, baseline_of(saved, "aaaa", path="ci/base.jsonl"), "bbbb")
    assert str(info.value) == (
        "ci/base.jsonl: the baseline was made for a different space of tests/test_a.py::test_train "
        "(fingerprint aaaa, now bbbb): accept the new space with --exp-baseline ci/base.jsonl "
        "--exp-update-baseline"
    )


# --------------------------------------------------------------------------- the file


def test_write_read_round_trip_exact_text(tmp_path: Path) -> None:
    records = [
        trial({"lr": 0.2, "opt": "sgd"}, 1, loss=[0.9, 0.45], acc=0.8),
        trial({"lr": 0.1, "opt": "sgd"}, 2, loss=0.5),
        trial({"lr": 0.1, "opt": "sgd"}, 1, loss=0.4),
        trial({"lr": 0.1, "opt": "sgd"}, 3, "skipped"),
        trial({"x": 1}, 1, function="tests/test_a.py::test_eval", score=math.nan),
    ]
    path = tmp_path / "out" / "base.jsonl"
    fingerprints = {TRAIN: "f1", "tests/test_a.py::test_eval": "f2"}
    write_baseline(path, records, fingerprints, 42, {"torch": "2.3", "pytest-exp": "0.1.0"})
    text = path.read_text()
    assert text == (
        '{"pytest-exp-baseline": 1, "seed": 42, "tests": {"tests/test_a.py::test_eval": "f2", '
        '"tests/test_a.py::test_train": "f1"}, "versions": {"pytest-exp": "0.1.0", "torch": "2.3"}}\n'
        '{"config": "cfg-x=1", "metrics": {"score": NaN}, "params": {"x": 1}, "run": 1, '
        '"test": "tests/test_a.py::test_eval"}\n'
        '{"config": "cfg-lr=0.1-opt=sgd", "metrics": {"loss": 0.4}, "params": {"lr": 0.1, "opt": "sgd"}, '
        '"run": 1, "test": "tests/test_a.py::test_train"}\n'
        '{"config": "cfg-lr=0.1-opt=sgd", "metrics": {"loss": 0.5}, "params": {"lr": 0.1, "opt": "sgd"}, '
        '"run": 2, "test": "tests/test_a.py::test_train"}\n'
        '{"config": "cfg-lr=0.2-opt=sgd", "metrics": {"acc": 0.8, "loss": 0.45}, '
        '"params": {"lr": 0.2, "opt": "sgd"}, "run": 1, "test": "tests/test_a.py::test_train"}\n'
    )
    assert not list(path.parent.glob("*.tmp"))
    lines = text.splitlines()
    assert len(lines) == 1 + 4  # a header, then one trial per line (the skipped one left out)
    for line in lines:
        data = json.loads(line)
        assert list(data) == sorted(data)
    keys = [
        (d["test"], json.dumps(d["params"], sort_keys=True), d["run"]) for d in map(json.loads, lines[1:])
    ]
    assert keys == sorted(keys)

    baseline = read_baseline(path)
    assert baseline.path == str(path)
    assert baseline.seed == 42
    assert baseline.versions == {"pytest-exp": "0.1.0", "torch": "2.3"}
    assert baseline.tests == fingerprints
    assert sorted(baseline.entries) == [
        ("tests/test_a.py::test_eval", "cfg-x=1"),
        (TRAIN, "cfg-lr=0.1-opt=sgd"),
        (TRAIN, "cfg-lr=0.2-opt=sgd"),
    ]
    assert [e.run for e in baseline.entries[TRAIN, "cfg-lr=0.1-opt=sgd"]] == [1, 2]
    assert baseline.means(TRAIN, "cfg-lr=0.1-opt=sgd") == {"loss": pytest.approx(0.45)}
    assert math.isnan(baseline.means("tests/test_a.py::test_eval", "cfg-x=1")["score"])
    assert baseline.means(TRAIN, "nope") == {}
    # saving again gives the same bytes: the file is stable under diff
    write_baseline(path, reversed(records), fingerprints, 42, {"pytest-exp": "0.1.0", "torch": "2.3"})
    assert path.read_text() == text


HEADER = '{"pytest-exp-baseline": 1, "seed": 1, "tests": {}, "versions": {}}'
BIG = "1" + "0" * 400
"""An integer beyond float range, as no writer writes it (record_metric refuses it)."""
BEYOND = "is beyond float range (an infinite value is written Infinity or -Infinity)"
ENTRY = '{"config": "c", "metrics": {"loss": 1}, "params": {}, "run": 1, "test": "t"}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "b.jsonl: empty file (expected a pytest-exp baseline)"),
        ("\n  \n", "b.jsonl: empty file (expected a pytest-exp baseline)"),
        ("{nope", "b.jsonl:1: bad JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[1]", "b.jsonl:1: expected a JSON object, got list"),
        ('{"seed": 1}', "b.jsonl:1: not a pytest-exp baseline (no 'pytest-exp-baseline' header)"),
        ('{"pytest-exp-baseline": 2}', "b.jsonl:1: unsupported baseline format 2 (expected 1)"),
        ('{"pytest-exp-baseline": 1, "tests": {}, "versions": {}}', "b.jsonl:1: missing key 'seed'"),
        (
            '{"pytest-exp-baseline": 1, "seed": true, "tests": {}, "versions": {}}',
            "b.jsonl:1: 'seed' must be an integer, got True",
        ),
        (
            '{"pytest-exp-baseline": 1, "seed": 1, "tests": {"t": 3}, "versions": {}}',
            "b.jsonl:1: 'tests' must map names to strings",
        ),
        (
            HEADER + "\n\n" + ENTRY + "\n{",
            "b.jsonl:4: bad JSON (Expecting property name enclosed in double quotes at column 2)",
        ),
        (
            HEADER + '\n{"config": "c", "metrics": {}, "params": {}, "run": 1}',
            "b.jsonl:2: missing key 'test'",
        ),
        (
            HEADER + '\n{"config": "c", "metrics": {}, "params": {}, "run": "1", "test": "t"}',
            "b.jsonl:2: 'run' must be an integer, got '1'",
        ),
        (
            HEADER + '\n{"config": "c", "metrics": {"loss": "x"}, "params": {}, "run": 1, "test": "t"}',
            "b.jsonl:2: metric 'loss' must be a number, got 'x'",
        ),
        (HEADER + "\n" + ENTRY + "\n" + ENTRY, "b.jsonl:3: run 1 of t [c] twice"),
        # NaN and the infinities are read as the writer writes them; other spellings are not JSON
        (
            HEADER + '\n{"config": "c", "metrics": {"loss": nan}, "params": {}, "run": 1, "test": "t"}',
            "b.jsonl:2: bad JSON (Expecting value at column 37): a value that is not finite is written "
            "NaN, Infinity or -Infinity",
        ),
        (
            HEADER + '\n{"config": "c", "metrics": {"loss": -inf}, "params": {}, "run": 1, "test": "t"}',
            "b.jsonl:2: bad JSON (Expecting value at column 37): a value that is not finite is written "
            "NaN, Infinity or -Infinity",
        ),
        # numbers no metric can be: JSON would read the first as infinite, the second overflows a mean
        (
            HEADER + '\n{"config": "c", "metrics": {"loss": 1e999}, "params": {}, "run": 1, "test": "t"}',
            "b.jsonl:2: number 1e999 " + BEYOND,
        ),
        (
            HEADER
            + '\n{"config": "c", "metrics": {"loss": '
            + BIG
            + '}, "params": {}, "run": 1, "test": "t"}',
            "b.jsonl:2: number " + BIG[:40] + " " + BEYOND,
        ),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BaselineError) as info:
        parse_baseline(text, "b.jsonl")
    assert str(info.value) == message
    path = tmp_path / "b.jsonl"
    path.write_text(text)
    with pytest.raises(BaselineError) as info:
        read_baseline(path)
    assert str(info.value) == message.replace("b.jsonl", str(path), 1)


def test_what_the_writer_writes_that_is_not_finite_reads_back() -> None:
    """NaN is a value the writer writes on purpose (a metric that was NaN, a space's NaN choice),
    so the reader takes it, as it takes the infinities; NaN against NaN is within."""
    records = [trial({"x": math.nan}, loss=math.nan, ppl=math.inf, gain=-math.inf)]
    text = render_baseline(records, {TRAIN: FP}, 1, {})
    assert '"metrics": {"gain": -Infinity, "loss": NaN, "ppl": Infinity}, "params": {"x": NaN}' in text
    [entry] = parse_baseline(text, "b.jsonl").entries[TRAIN, "cfg-x=nan"]
    assert math.isnan(entry.params["x"])
    assert math.isnan(entry.metrics["loss"])
    assert (entry.metrics["ppl"], entry.metrics["gain"]) == (math.inf, -math.inf)
    assert statuses(compare(records, parse_baseline(text, "b.jsonl"), FP)) == [
        ("gain", "within"),
        ("loss", "within"),
        ("ppl", "within"),
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(BaselineError) as info:
        read_baseline(path)
    assert str(info.value) == f"{path}: cannot read the baseline (No such file or directory)"


# --------------------------------------------------------------------------- properties

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.just(math.nan)
run_metrics = st.dictionaries(st.sampled_from(["loss", "acc", "n"]), values, max_size=3)
configs = st.lists(
    st.tuples(st.sampled_from([0.1, 0.2, 0.3]), st.integers(1, 3), run_metrics),
    max_size=8,
    unique_by=lambda c: (c[0], c[1]),
)
directions = st.sampled_from(["min", "max", "any"])
tolerances = st.builds(
    Tolerance,
    directions,
    st.floats(min_value=0, max_value=0.5),
    st.floats(min_value=0, max_value=1),
)


@PROPS
@given(configs, st.dictionaries(st.sampled_from(["loss", "acc", "n", "*"]), tolerances), st.booleans())
def test_a_baseline_compared_with_itself_is_within(
    trials: list[tuple[float, int, dict[str, Any]]], tolerance_map: dict[str, Tolerance], strict: bool
) -> None:
    records = [trial({"lr": lr}, run, **metrics) for lr, run, metrics in trials]
    verdicts = compare(records, baseline_of(records), FP, defaults=tolerance_map, strict=strict)
    assert {v.status for v in verdicts} <= {"within"}
    assert not any(v.failed for v in verdicts)
    assert len(verdicts) == sum(len(names) for names in _merged(trials).values())


def _merged(trials: list[tuple[float, int, dict[str, Any]]]) -> dict[float, set[str]]:
    names: dict[float, set[str]] = {}
    for lr, _, metrics in trials:
        names.setdefault(lr, set()).update(metrics)
    return names


@PROPS
@given(
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=0, max_value=0.5),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=1.01, max_value=10),
    st.sampled_from(["min", "max"]),
)
def test_moving_beyond_the_allowance_towards_worse_is_a_regression(
    reference: float, relative: float, absolute: float, factor: float, direction: str
) -> None:
    tolerance = Tolerance("min" if direction == "min" else "max", relative, absolute)
    step = max(tolerance.allowance(reference) * factor, 1e-9 * max(1.0, abs(reference)))
    worse = reference + step if direction == "min" else reference - step
    better = reference - step if direction == "min" else reference + step
    saved = [trial({"lr": 0.1}, m=reference)]
    spec = {"m": tolerance}
    [regression] = compare([trial({"lr": 0.1}, m=worse)], baseline_of(saved), FP, per_test=spec)
    assert regression.status == "regression"
    assert regression.failed
    [improvement] = compare([trial({"lr": 0.1}, m=better)], baseline_of(saved), FP, per_test=spec)
    assert improvement.status == "improved"
    assert not improvement.failed
