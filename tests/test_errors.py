"""Bad spaces, markers and options: a clear message for the test that uses them, no traceback."""

from __future__ import annotations

import pytest

TEST = """
import pytest

@pytest.mark.space("space.toml")
def test_fit(x):
    pass
"""

CASES = {
    "syntax": (
        "[x]\ntype = range\nbounds = [0, 1]\n",
        "space.toml: invalid TOML: Invalid value (at line 2, column 8)",
    ),
    "missing_type": (
        "[x]\nbounds = [0, 1]\n",
        'space.toml: [x] missing key "type" (expected one of "value", "list", "range", "random")',
    ),
    "unknown_type": (
        '[x]\ntype = "rnage"\nbounds = [0, 1]\n',
        'space.toml: [x] unknown type "rnage" (expected one of "value", "list", "range", "random"; '
        'did you mean "range"?)',
    ),
    "unknown_key": (
        '[x]\ntype = "range"\nbound = [0, 1]\n',
        'space.toml: [x] unknown key "bound" for type "range" (expected "bounds", "step", "dtype"; '
        'did you mean "bounds"?)',
    ),
    "missing_bounds": (
        '[x]\ntype = "range"\n',
        'space.toml: [x] missing key "bounds" (expected bounds = [low, high])',
    ),
    "malformed_bounds": (
        '[x]\ntype = "range"\nbounds = [0, "1"]\n',
        'space.toml: [x] bounds must be [low, high] of two finite numbers (got [0, "1"])',
    ),
    "low_not_below_high": (
        '[x]\ntype = "random"\nbounds = [0.1, 0.001]\n',
        "space.toml: [x] bounds must be [low, high] with low < high (got [0.1, 0.001])",
    ),
    "step": (
        '[x]\ntype = "range"\nbounds = [0, 1]\nstep = -0.5\n',
        "space.toml: [x] step must be > 0 (got -0.5)",
    ),
    "int_fraction": (
        '[x]\ntype = "range"\nbounds = [0, 10]\nstep = 0.5\ndtype = "int"\n',
        'space.toml: [x] dtype "int" needs integer bounds and step (got step 0.5)',
    ),
    "log_low": (
        '[x]\ntype = "random"\nbounds = [0, 1]\nprior = "log-uniform"\n',
        'space.toml: [x] prior "log-uniform" needs low > 0 (got bounds [0, 1])',
    ),
    "prior": (
        '[x]\ntype = "random"\nprior = "loguniform"\n',
        'space.toml: [x] unknown prior "loguniform" (expected one of "uniform", "log-uniform"; '
        'did you mean "log-uniform"?)',
    ),
    "dtype": (
        '[x]\ntype = "range"\nbounds = [0, 1]\ndtype = "integer"\n',
        'space.toml: [x] unknown dtype "integer" (expected one of "float", "int"; did you mean "int"?)',
    ),
    "n": (
        '[x]\ntype = "random"\nn = 0\n',
        "space.toml: [x] n must be an integer >= 1 (got 0)",
    ),
    "empty_list": (
        "x = []\n",
        "space.toml: [x] a list needs at least one value (got [])",
    ),
    "mixed_list": (
        '[x]\ntype = "list"\nvalue = [1, 2, "A"]\n',
        'space.toml: [x] list values must all be of one kind (got number 1, string "A")',
    ),
    "bool_is_not_number": (
        "x = [1, true]\n",
        "space.toml: [x] list values must all be of one kind (got number 1, bool true)",
    ),
    "empty_space": ("", "space.toml: the space defines no parameters"),
    "empty_name": ('"" = [1, 2]\n', 'space.toml: [""] a parameter needs a name (got an empty one)'),
    "blank_name": ('" " = [1, 2]\n', 'space.toml: [" "] a parameter needs a name (got an empty one)'),
}


@pytest.mark.parametrize(("toml", "message"), CASES.values(), ids=CASES.keys())
def test_bad_space_is_a_collection_error(pytester: pytest.Pytester, toml: str, message: str) -> None:
    pytester.makefile(".toml", space=toml)
    pytester.makepyfile(test_train=TEST)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*_ ERROR collecting test_train.py _*", f"{message}; used by test_train.py::test_fit"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*pytest_exp*")


def test_missing_file_names_the_resolved_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_train=TEST)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["space.toml: space file not found; used by test_train.py::test_fit"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "space()",
            "@pytest.mark.space() names no space: give one in the marker "
            '(@pytest.mark.space("space.toml")), with --exp-space FILE, or with exp_space in the ini file',
        ),
        (
            "space({'x': [1]}, smaple=2)",
            '@pytest.mark.space has no keyword "smaple" '
            "(expected one of 'sample', 'repeat', 'objective', 'optimize', 'optimizer', 'pruner', "
            "'prune_warmup', 'surrogate', 'acq', 'initial_points', 'liar', 'seed', 'tolerance', "
            """'baseline_strict'; did you mean "sample"?)""",
        ),
        ("space({'x': [1]}, repeat=0)", "invalid space marker keyword repeat=0: expected an integer >= 1"),
        ("space({'x': [1]}, seed='x')", "invalid space marker keyword seed='x': expected an integer"),
        (
            "space('a.toml', 'b.toml')",
            "@pytest.mark.space takes one space, a path or a dict (got 2 arguments)",
        ),
        ("space(3)", "@pytest.mark.space takes a path to a TOML file or a dict (got int)"),
        (
            "space({'x': {'type': 'range'}})",
            'space dict: [x] missing key "bounds" (expected bounds = [low, high])',
        ),
        ("space({'request': [1]})", "space dict: parameter name 'request' is reserved"),
        (
            "space({'x': {'type': 'range', 'bounds': [0, 2000], 'dtype': 'int'}, "
            "'y': {'type': 'range', 'bounds': [0, 1000], 'dtype': 'int'}})",
            "space dict: the grid has 2,000,000 points, too many to collect (limit 1,000,000); "
            "run a sample of it with --exp-sample N or search it with --exp-optimize N",
        ),
    ],
)
def test_bad_marker_is_a_collection_error(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        test_train=f"""
        import pytest

        @pytest.mark.{marker}
        def test_fit(x):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"{message}; used by test_train.py::test_fit"])


@pytest.mark.parametrize(
    ("name", "where"),
    [("record_metric", "pytest_exp.fixtures"), ("tmp_path", "_pytest.tmpdir"), ("lr", "conftest")],
)
def test_a_parameter_that_would_replace_a_fixture_is_a_collection_error(
    pytester: pytest.Pytester, name: str, where: str
) -> None:
    # Parametrize would hand the test [1, 2] in place of the fixture (issue 15).
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef lr():\n    return 0.1\n")
    pytester.makepyfile(
        test_train=f"""
        import pytest

        @pytest.mark.space({{"{name}": [1, 2], "x": [3]}})
        def test_fit(x, {name}):
            pass

        @pytest.mark.space({{"{name}": [1, 2]}})
        def test_other():
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "test_train.py::test_other")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"space dict: [{name}] parameter '{name}' has the name of the fixture {name} (from {where}) "
            "that the test uses, and would replace it: rename the parameter; used by test_train.py::test_fit"
        ]
    )


def test_a_parameter_named_as_a_fixture_the_test_does_not_use_is_fine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"tmp_path": [1, 2]})
        def test_fit(exp_params):
            assert exp_params["tmp_path"] in (1, 2)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_sample_makes_a_huge_grid_usable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        R = {"type": "range", "bounds": [0, 2000], "dtype": "int"}

        @pytest.mark.space({"x": R, "y": R})
        def test_fit(x, y):
            pass
        """
    )
    pytester.runpytest("--exp-sample", "3").assert_outcomes(passed=3)


def test_exp_fixture_without_a_space_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fit(exp_params):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_exp_fixture_without_a_space_fails_the_test.py::test_fit uses exp_params "
            'but has no parameter space: mark it with @pytest.mark.space("space.toml")'
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exp-sample", "0"], "argument --exp-sample: invalid value '0': expected an integer >= 1"),
        (["--exp-repeat", "two"], "argument --exp-repeat: invalid value 'two': expected an integer >= 1"),
        (
            ["--exp-seed", "first"],
            'argument --exp-seed: invalid value \'first\': expected an integer, "last" or "random"',
        ),
        (["--exp-space", "nope.toml"], "--exp-space nope.toml: space file not found"),
        (
            ["--exp-optimize", "100000000"],
            "argument --exp-optimize: invalid value '100000000': expected an integer from 1 to 1,000,000 "
            "(each trial is a test item)",
        ),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_bad_ini_value_is_a_usage_error_naming_the_config_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nexp_sample = many\n")
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: tox.ini: invalid exp_sample = 'many': expected an integer >= 1"])


SPACE_TEST = """
import pytest

@pytest.mark.space({"x": [1, 2]})
def test_a(x, record_metric):
    record_metric("y", x)
"""


def test_a_baseline_that_is_not_text_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=SPACE_TEST)
    (pytester.path / "bl.jsonl").write_bytes(b'{"pytest-exp-baseline": 1}\n\xff\xfe{}\n')
    result = pytester.runpytest("--exp-baseline", "bl.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        [
            "ERROR: bl.jsonl:2: not UTF-8 text (byte 0xff at offset 27); a baseline is the JSON lines "
            "file --exp-save-baseline writes"
        ]
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--exp-report", "exp: --exp-report afile/out.csv: cannot write (File exists)"),
        ("--exp-save-baseline", "exp: could not write the baseline afile/out.csv: File exists"),
    ],
)
@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["plain", "quiet"])
def test_a_file_that_cannot_be_written_fails_the_run(
    pytester: pytest.Pytester, option: str, message: str, quiet: list[str]
) -> None:
    pytester.makepyfile(test_a=SPACE_TEST)
    (pytester.path / "afile").write_text("a file, not a directory\n")
    result = pytester.runpytest(option, "afile/out.csv", *quiet)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes()["passed"] == 2
    assert result.outlines.count(message) == 1


TOML_SETTINGS = "exp_sample = 2\nexp_seed = 5\nexp_repeat = 2\nexp_baseline_strict = false\n"


def test_typed_values_in_pyproject_toml(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\n{TOML_SETTINGS}")
    pytester.makepyfile(test_a=SPACE_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)  # 2 sampled configurations (of 2), 2 runs each
    assert "exp: seed 5 (reproduce with --exp-seed 5)" in result.outlines


@pytest.mark.skipif(
    tuple(int(p) for p in pytest.__version__.split(".")[:2]) < (9, 2),
    reason="pytest.toml takes typed values for plugin options from pytest 9.2",
)
def test_typed_values_in_pytest_toml(pytester: pytest.Pytester) -> None:
    (pytester.path / "pytest.toml").write_text(f'[pytest]\n{TOML_SETTINGS}exp_objective = "y:max"\n')
    pytester.makepyfile(test_a=SPACE_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    assert "exp: seed 5 (reproduce with --exp-seed 5)" in result.outlines
    assert "best: x=2 -> y 2 ± 0 (max)" in result.outlines
