"""Real pytest sessions: spaces become items, options and markers shape them, xdist agrees."""

from __future__ import annotations

import json
import re

import pytest

BASIC = """
[x]
type = "range"
bounds = [-10, 10]
dtype = "int"

[lr]
type = "random"
bounds = [1e-4, 1e-1]
prior = "log-uniform"
n = 3

[opt]
type = "list"
value = ["adam", "sgd"]
"""

EXP_README = """
[p1]
type = "value"
value = 1

[p2]
type = "list"
value = [true, false]

[p3]
type = "range"
bounds = [0, 10]
dtype = "int"
"""


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and " " not in line]


def test_exp_readme_space_gives_twenty_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", space=EXP_README)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space("space.toml")
        def test_it(p1, p2, p3, exp_params):
            assert p1 == 1
            assert exp_params == {"p1": p1, "p2": p2, "p3": p3}
            assert type(p3) is int
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    items = collected(result)
    assert len(items) == 20
    assert items[:2] == [
        "test_exp_readme_space_gives_twenty_items.py::test_it[p1=1-p2=True-p3=0]",
        "test_exp_readme_space_gives_twenty_items.py::test_it[p1=1-p2=True-p3=1]",
    ]
    assert items[-1] == "test_exp_readme_space_gives_twenty_items.py::test_it[p1=1-p2=False-p3=9]"
    pytester.runpytest().assert_outcomes(passed=20)


def test_verbose_ids_and_plain_tests_untouched(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", basic=BASIC)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space("basic.toml")
        def test_train(x, lr, exp_params, exp_trial):
            assert exp_params["opt"] in ("adam", "sgd")
            assert exp_trial.params == exp_params

        @pytest.mark.parametrize("n", [1, 2])
        def test_plain(n):
            pass
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=20 * 3 * 2 + 2)
    result.stdout.fnmatch_lines(
        [
            "*::test_train[[]x=-10-lr=0.00153-opt=adam[]] PASSED*",
            "*::test_train[[]x=9-lr=0.00406-opt=sgd[]] PASSED*",
            "*::test_plain[[]1[]] PASSED*",
        ]
    )


def test_params_not_in_signature_reach_exp_params_and_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def model(width):
            return {"width": width}

        @pytest.mark.space({"width": [8, 16], "act": "relu"})
        def test_it(model, exp_params):
            assert model["width"] == exp_params["width"]
            assert exp_params["act"] == "relu"
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_it[[]width=8-act=relu[]] PASSED*"])


def test_exp_trial_ids_and_seeds_are_stable_and_distinct(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json, pytest

        @pytest.mark.space({"a": [1, 2]}, repeat=2)
        def test_it(exp_trial, a):
            assert 1 <= exp_trial.run <= 2
            assert isinstance(exp_trial.seed, int) and 0 <= exp_trial.seed < 2**32
            print("TRIAL", json.dumps([exp_trial.id, exp_trial.run, exp_trial.seed, exp_trial.params]))
        """
    )

    def trials() -> list[list[object]]:
        result = pytester.runpytest("-s", "-q")
        result.assert_outcomes(passed=4)
        return [json.loads(t) for t in re.findall(r"TRIAL (\[.*\])", result.stdout.str())]

    first = trials()
    assert first == trials()
    ids = {(t[3]["a"], t[0]) for t in first}
    assert len(ids) == 2
    assert len({t[2] for t in first}) == 4
    assert sorted((t[3]["a"], t[1]) for t in first) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_repeat_ids_carry_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]})
        def test_it(a):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "--exp-repeat", "2")
    assert [i.split("::")[1] for i in collected(result)] == [
        "test_it[a=1-run=1]",
        "test_it[a=1-run=2]",
        "test_it[a=2-run=1]",
        "test_it[a=2-run=2]",
    ]


def test_sample_draws_distinct_points_and_whole_grid_when_large(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": {"type": "range", "bounds": [0, 100], "dtype": "int"}})
        def test_it(a):
            pass
        """
    )
    five = collected(pytester.runpytest("--collect-only", "-q", "--exp-sample", "5"))
    assert len(set(five)) == 5
    assert five == collected(pytester.runpytest("--collect-only", "-q", "--exp-sample", "5"))
    other = collected(pytester.runpytest("--collect-only", "-q", "--exp-sample", "5", "--exp-seed", "1"))
    assert other != five
    assert len(collected(pytester.runpytest("--collect-only", "-q", "--exp-sample", "1000"))) == 100


def test_marker_keywords_and_command_line_precedence(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nexp_repeat = 3\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2, 3, 4]}, sample=2, repeat=2)
        def test_marked(a):
            pass

        @pytest.mark.space({"b": [1, 2]})
        def test_ini(b):
            pass
        """
    )
    items = collected(pytester.runpytest("--collect-only", "-q"))
    assert sum("test_marked" in i for i in items) == 2 * 2
    assert sum("test_ini" in i for i in items) == 2 * 3
    items = collected(pytester.runpytest("--collect-only", "-q", "--exp-repeat", "1", "--exp-sample", "3"))
    assert sum("test_marked" in i for i in items) == 3
    assert sum("test_ini" in i for i in items) == 2


def test_marker_seed_changes_draws_unless_command_line_sets_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        SPACE = {"r": {"type": "random", "n": 2}}

        @pytest.mark.space(SPACE, seed=7)
        def test_seven(r):
            pass

        @pytest.mark.space(SPACE)
        def test_default(r):
            pass
        """
    )

    def labels(*args: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for item in collected(pytester.runpytest("--collect-only", "-q", *args)):
            name, label = re.fullmatch(r".*::(\w+)\[(.*)\]", item).groups()  # type: ignore[union-attr]
            out.setdefault(name, []).append(label)
        return out

    default = labels()
    assert default["test_seven"] != default["test_default"]
    forced = labels("--exp-seed", "7")
    assert forced["test_seven"] == forced["test_default"] == default["test_seven"]


def test_exp_space_overrides_markers_and_fills_bare_ones(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", other="a = [5, 6]\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1]})
        def test_dict(a):
            pass

        @pytest.mark.space()
        def test_bare(a):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "--exp-space", "other.toml")
    assert [i.split("::")[1] for i in collected(result)] == [
        "test_dict[a=5]",
        "test_dict[a=6]",
        "test_bare[a=5]",
        "test_bare[a=6]",
    ]


def test_marker_path_is_relative_to_the_test_file(pytester: pytest.Pytester) -> None:
    sub = pytester.mkpydir("sub")
    (sub / "s.toml").write_text("a = [1, 2]\n")
    (sub / "test_sub.py").write_text(
        "import pytest\n\n@pytest.mark.space('s.toml')\ndef test_it(a):\n    pass\n"
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_ini_space_is_relative_to_the_ini_file_and_used_by_bare_markers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nexp_space = spaces/s.toml\n")
    pytester.mkdir("spaces")
    (pytester.path / "spaces" / "s.toml").write_text("a = [1, 2, 3]\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_it.py").write_text(
        "import pytest\n\n@pytest.mark.space()\ndef test_it(a):\n    pass\n"
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_class_marker_applies_to_methods(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"a": [1, 2]})
        class TestIt:
            def test_one(self, a):
                pass

            def test_two(self, exp_params):
                assert exp_params["a"] in (1, 2)
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_header_prints_seed_and_last_reuses_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space({"r": {"type": "random", "n": 3}})
        def test_it(r):
            pass
        """
    )
    result = pytester.runpytest("--exp-seed", "random", "-v")
    header = next(line for line in result.outlines if line.startswith("exp: seed"))
    seed = int(re.fullmatch(r"exp: seed (\d+) \(reproduce with --exp-seed \1\)", header).group(1))  # type: ignore[union-attr]
    items = [line.split()[0] for line in result.outlines if "PASSED" in line]
    again = pytester.runpytest("--exp-seed", "last", "-v")
    again.stdout.fnmatch_lines([f"exp: seed {seed} (reproduce with --exp-seed {seed})"])
    assert [line.split()[0] for line in again.outlines if "PASSED" in line] == items
    assert len(items) == 3


def test_default_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["exp: seed 0 (reproduce with --exp-seed 0)"])


def test_options_are_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "pytest-exp: parameter spaces and experiments:",
            "  --exp-space=FILE*",
            "  --exp-sample=N*",
            "  --exp-repeat=N*",
            "  --exp-seed=SEED*",
        ]
    )


@pytest.mark.parametrize("n", ["2"])
def test_xdist_collects_random_and_sampled_spaces_identically(pytester: pytest.Pytester, n: str) -> None:
    pytester.makefile(".toml", basic=BASIC)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.space("basic.toml")
        def test_train(x, lr, opt, exp_trial):
            assert exp_trial.params == {"x": x, "lr": lr, "opt": opt}
        """
    )
    args = ("--exp-sample", "17", "--exp-seed", "random")
    result = pytester.runpytest("-n", n, "-v", *args)
    result.assert_outcomes(passed=17)
    seed = re.search(r"exp: seed (\d+)", result.stdout.str()).group(1)  # type: ignore[union-attr]
    on_workers = sorted(re.findall(r"PASSED (\S+::\S+)", result.stdout.str()))
    alone = collected(pytester.runpytest("--collect-only", "-q", "--exp-sample", "17", "--exp-seed", seed))
    assert on_workers == sorted(alone)


def test_exp_space_without_marked_tests_warns(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", other="a = [5, 6]\n")
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest("--exp-space", "other.toml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "exp: --exp-space other.toml was not used: no collected test is marked with "
            "@pytest.mark.space (the option replaces the space of marked tests only)"
        ]
    )


def test_grids_are_cached_by_meaning_not_object_identity(pytester: pytest.Pytester) -> None:
    from pytest_exp.session import STASH
    from pytest_exp.space import Space

    session = pytester.parseconfigure().stash[STASH]
    for i in range(5):
        # Each space dies after use, so CPython may give the next one the same id().
        assert list(session.grid(Space.from_dict({"a": [i]}), 0)) == [{"a": i}]
    first = Space.from_dict({"a": [1, 2]})
    assert session.grid(first, 0) is session.grid(Space.from_dict({"a": [1, 2]}), 0)
    assert session.grid(first, 0) is not session.grid(first, 1)


def test_a_run_without_space_trials_loads_no_store_report_or_baseline(pytester: pytest.Pytester) -> None:
    # Every pytest run in an environment with the plugin pays for what it imports (and, where no
    # bytecode was compiled, for compiling it): these wait until needed.
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            heavy = ["pytest_exp.store", "pytest_exp.report", "pytest_exp.baseline", "pytest_exp.gate"]
            # (pytest_exp.tolerance is not among them: settings takes the --exp-tolerance grammar from it.)
            heavy += ["sqlite3", "multiprocessing.connection", "secrets", "skopt", "numpy"]
            print("loaded:", [name for name in heavy if name in sys.modules])
        """
    )
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["loaded: []"])
