"""Spaces at their limits (issue 15): ranges of tiny steps, grids too large to collect whole but
sampled or optimized, lists of arrays and tables in a study, and whatever the loader is given."""

from __future__ import annotations

import datetime as dt
import math
import string
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_exp.space import MAX_DEPTH, Range, Space, SpaceError
from pytest_exp.store import Store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib


def stored(pytester: pytest.Pytester) -> list[Any]:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [t for run in store.runs() for t in store.trials(run.id)]


def refusal(size: str, source: str = "space.toml") -> str:
    return (
        f"{source}: the grid has {size} points, too many to collect (limit 1,000,000); run a sample "
        "of it with --exp-sample N or search it with --exp-optimize N; used by test_train.py::test_fit"
    )


# --------------------------------------------------------------------------- item 2: tiny steps


TINY = 'x = {type = "range", bounds = [0, 1], step = 1e-27}'


def test_a_range_of_a_tiny_step_is_counted_exactly() -> None:
    # Counted one value at a time, this took some 1e11 steps: collection hung.
    x = Space.from_toml(TINY, source="space.toml").params["x"]
    assert isinstance(x, Range)
    n = x.grid_size
    assert n == 999_999_999_999_999_944_488_848_769
    values = x.grid_values(0)
    # The last value is below high; the next one, in the same decimal arithmetic, rounds to it.
    assert values[n - 1] == 0.9999999999999999
    assert float(Decimal(n) * Decimal("1e-27")) == 1.0
    assert (values[0], values[1], values[10**26]) == (0.0, 1e-27, 0.1)


@pytest.mark.parametrize(
    ("bounds", "step", "count"),
    [
        ("[0, 1]", "1e-100", 99999999999999994448884876875 * 10**71),
        ("[-1.5, 2.5]", "3e-20", 133333333333333325932),
        # Values in 28-digit decimals: a run of indices shares each value; the count stays exact.
        ("[0, 1e300]", "1e-300", 99999999999999997815391483135 * 10**571),
    ],
)
def test_ranges_finer_than_floats_are_counted(bounds: str, step: str, count: int) -> None:
    x = Space.from_toml(f'x = {{type = "range", bounds = {bounds}, step = {step}}}').params["x"]
    assert isinstance(x, Range)
    assert x.grid_size == count
    values = x.grid_values(0)
    assert values[count - 1] < x.high
    assert float(Decimal(repr(x.low)) + count * Decimal(step)) >= x.high


def old_grid_size(r: Range) -> int:
    """Range.grid_size as it was, one value at a time: what the counts of pinned spaces are."""
    low, high, step = Decimal(repr(r.low)), Decimal(repr(r.high)), Decimal(repr(r.step))
    count = math.ceil((high - low) / step)
    while count > 1 and float(low + (count - 1) * step) >= r.high:
        count -= 1
    return count


@given(
    st.floats(-1e6, 1e6),
    st.floats(1e-12, 1e6),
    st.integers(1, 3000),
)
@settings(max_examples=300, deadline=None, database=None)
def test_counts_of_ranges_the_parser_always_took_stay_the_same(low: float, width: float, n: int) -> None:
    step = width / n
    high = low + width
    if not (low < high and step > 0):
        return
    r = Range("x", low, high, step)
    assert r.grid_size == old_grid_size(r)


def test_a_tiny_step_grid_runs_sampled_and_is_refused_whole(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", space=TINY)
    pytester.makepyfile(
        test_train="""
        import pytest

        @pytest.mark.space("space.toml")
        def test_fit(x):
            assert 0 <= x < 1
        """
    )
    result = pytester.runpytest("--exp-sample", "3", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    assert refusal("999,999,999,999,999,944,488,848,769") in result.outlines


# --------------------------------------------------------------------------- item 10: huge grids


THIRTY = {f"p{i:02d}": list(range(10)) for i in range(30)}


def test_a_grid_of_any_size_is_sampled_by_index() -> None:
    grid = Space.from_dict(THIRTY).grid(0)
    assert grid.size == 10**30
    with pytest.raises(OverflowError) as e:
        len(grid)
    assert str(e.value) == (
        "the grid has 1,000,000,000,000,000,000,000,000,000,000 points, "
        "more than len() can count: use Grid.size"
    )
    picks = grid.sample(3)
    assert picks == sorted(set(picks))
    assert len(picks) == 3
    assert all(0 <= i < 10**30 for i in picks)
    assert grid.sample(3) == picks
    assert grid.sample(3, seed=1) != picks
    # Point i of 30 lists of the digits 0..9 is i written in 30 digits.
    for i in picks:
        assert "".join(str(v) for v in grid[i].values()) == f"{i:030d}"
        assert grid.label(i) == "-".join(f"p{j:02d}={d}" for j, d in enumerate(f"{i:030d}"))
    assert grid[-1] == dict.fromkeys(THIRTY, 9)


def test_a_grid_under_sys_maxsize_samples_as_random_sample_does() -> None:
    # The grids that sampled before keep their picks (tests/test_identity.py pins small ones).
    import random

    from pytest_exp.trial import derive_seed

    grid = Space.from_dict({f"p{i:02d}": list(range(10)) for i in range(18)}).grid(5)
    rng = random.Random(derive_seed(5, "sample", bits=64))
    assert grid.sample(4) == sorted(rng.sample(range(10**18), 4))


def test_thirty_lists_run_sampled_and_are_refused_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_train=f"""
        import pytest

        @pytest.mark.space({THIRTY!r})
        def test_fit(p00, p29, exp_params):
            assert len(exp_params) == 30
            assert (p00, p29) == (exp_params["p00"], exp_params["p29"])
        """
    )
    result = pytester.runpytest("--exp-sample", "3", "-p", "no:randomly", "--collect-only", "-q")
    items = [line for line in result.outlines if "::" in line]
    assert len(items) == 3
    assert all(line.startswith("test_train.py::test_fit[p00=") for line in items)
    pytester.runpytest("--exp-sample", "3", "-p", "no:randomly").assert_outcomes(passed=3)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    assert refusal("1,000,000,000,000,000,000,000,000,000,000", "space dict") in result.outlines


BIG_RANGE = """
[x]
type = "range"
bounds = [0, 2000000]
dtype = "int"
"""


@pytest.mark.usefixtures("warm_skopt")
def test_a_parameter_over_the_limit_is_sampled_and_optimized(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", space=BIG_RANGE)
    pytester.makepyfile(
        test_train="""
        import pytest

        @pytest.mark.space("space.toml", objective="y")
        def test_fit(x, record_metric):
            assert type(x) is int and 0 <= x < 2000000
            record_metric("y", (x - 1234567) ** 2)
        """
    )
    assert Space.from_toml(BIG_RANGE).size == 2_000_000
    pytester.runpytest("--exp-sample", "5", "-p", "no:randomly").assert_outcomes(passed=5)
    args = ("--exp-optimize", "3", "--exp-initial-points", "2", "-p", "no:randomly")
    pytester.runpytest(*args).assert_outcomes(passed=3)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    assert refusal("2,000,000") in result.outlines


@pytest.mark.parametrize(
    ("bounds", "dtype", "message"),
    [
        (
            "[0, 1000000000000000000000000000000]",
            "int",
            "space.toml: [x] int bounds must be within 64-bit integers to optimize, "
            "+-9,223,372,036,854,775,807 (got [0, 1000000000000000000000000000000])",
        ),
        (
            "[-1.7e308, 1.7e308]",
            "float",
            "space.toml: [x] bounds too wide to optimize: high - low overflows a float "
            "(got [-1.7e+308, 1.7e+308])",
        ),
    ],
)
def test_bounds_an_optimizer_cannot_hold_are_refused_at_collection(
    pytester: pytest.Pytester, bounds: str, dtype: str, message: str
) -> None:
    # A range of any size is a space now; skopt's arrays failed every trial of these.
    pytester.makefile(".toml", space=f'x = {{type = "range", bounds = {bounds}, dtype = "{dtype}"}}')
    pytester.makepyfile(
        test_train="""
        import pytest

        @pytest.mark.space("space.toml")
        def test_fit(x):
            pass
        """
    )
    result = pytester.runpytest("--exp-optimize", "2", "-p", "no:randomly")
    result.assert_outcomes(errors=1)
    assert f"{message}; used by test_train.py::test_fit" in result.outlines
    pytester.runpytest("--exp-sample", "2", "-p", "no:randomly").assert_outcomes(passed=2)


# --------------------------------------------------------------------------- item 11: array values


ARRAYS = """
import pytest

SPACE = {
    "a": [[1, 2], [3, 4], [5]],
    "t": [{"k": 1, "w": [0.5]}, {"k": 2, "w": []}],
    "x": {"type": "range", "bounds": [0, 1]},
    "opt": ["adam", "sgd"],
}

@pytest.mark.space(SPACE, objective="y")
def test_fit(a, t, x, opt, record_metric, exp_trial):
    assert a in SPACE["a"] and type(a) is list
    assert t in SPACE["t"] and type(t) is dict
    assert exp_trial.params == {"a": a, "t": t, "x": x, "opt": opt}
    record_metric("y", sum(a) + t["k"] + x)
    a.append(99)  # the test's own copy: later trials and the optimizer see the space's values
"""


@pytest.mark.usefixtures("warm_skopt")
@pytest.mark.parametrize("surrogate", ["GP", "random"])
def test_a_study_searches_lists_of_arrays_and_tables(pytester: pytest.Pytester, surrogate: str) -> None:
    # Before: every trial failed with skopt's TypeError: unhashable type: 'list'.
    pytester.makepyfile(test_train=ARRAYS)
    args = ("--exp-optimize", "6", "--exp-initial-points", "2", "--exp-surrogate", surrogate)
    pytester.runpytest(*args, "-p", "no:randomly").assert_outcomes(passed=6)
    trials = stored(pytester)
    assert [t.status for t in trials] == ["passed"] * 6
    for t in trials:
        assert t.params["a"] in [[1, 2], [3, 4], [5]]
        assert t.params["t"] in [{"k": 1, "w": [0.5]}, {"k": 2, "w": []}]
        assert t.params["opt"] in ["adam", "sgd"]
    # A second run resumes the study: the stored array points are told back to the optimizer.
    result = pytester.runpytest("--exp-optimize", "8", "--exp-initial-points", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_lists_of_scalars_stay_categories_and_arrays_go_by_index() -> None:
    from skopt.space import Categorical

    from pytest_exp.study.skopt import dimensions

    space = Space.from_dict(
        {"opt": ["adam", "sgd"], "a": [[1, 2], [3]], "t": [{"k": 1}], "d": [dt.date(2024, 1, 2)]}
    )
    opt, a, t, d = dimensions(space)
    assert all(isinstance(dim, Categorical) for dim in (opt, a, t, d))
    assert (opt.categories, a.categories, t.categories, d.categories) == (
        ("adam", "sgd"),
        (0, 1),
        (0,),
        (dt.date(2024, 1, 2),),
    )


# --------------------------------------------------------------------------- the loader, any input
#
# Any TOML text and any dict either loads into a space that works (it has a size, a fingerprint,
# a grid to sample, and a TOML text that loads back equal) or raises SpaceError naming the file
# and, for a parameter's fault, the parameter; never another exception. Sizes are bounded by the
# strategies, so each example costs bounded time: no deadline, nothing timed.

LOADER = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.large_base_example],
)
NAMES = st.sampled_from(["x", "lr", "type", "value", "bounds", "step", "n", "a-b", "", "é", "1"])
SPEC_KEYS = ["type", "value", "bounds", "step", "dtype", "prior", "n"]
WORDS = ["value", "list", "range", "random", "RANGE", "float", "int", "uniform", "log-uniform", "x"]

# TOML numbers as written, the ones at the edges of floats and of the old code's limits first.
TOML_NUMBERS = st.one_of(
    st.sampled_from(
        ["0", "1", "-1", "2", "1e-27", "1e-20", "5e-324", "1.7e308", "-1.7e308", "1e300", "1e-300",
         "0.1", "-0.0", "inf", "-inf", "nan", "2000000", "1_000_001", "0x7fffffffffffffff", "0b101",
         "9223372036854775807", "123456789012345678901234567890", "1" * 400, "0x" + "f" * 1200,
         "1" * 5000]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)  # fmt: skip
TOML_SCALARS = st.one_of(
    TOML_NUMBERS,
    st.sampled_from(["true", "false", "2024-01-02", "07:32:00", "1979-05-27T07:32:00Z", '""', "'x'"]),
    st.sampled_from(WORDS).map(lambda w: f'"{w}"'),
    st.text(max_size=8).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


def _toml_array(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _toml_table(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'"{k}" = {v}' for k, v in pairs) + "}"


TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_toml_array),
        st.lists(st.tuples(st.sampled_from([*SPEC_KEYS, "k", "w"]), inner), max_size=4).map(_toml_table),
    ),
    max_leaves=12,
)
# What the old code and the TOML reader met their limits on: nesting past the recursion limit.
DEEP = st.tuples(st.integers(MAX_DEPTH - 2, 1200), st.sampled_from(["[", "{a = "])).map(
    lambda d: d[1] * d[0] + "1" + ("]" if d[1] == "[" else "}") * d[0]
)
TOML_SPECS = st.lists(
    st.tuples(
        st.sampled_from(SPEC_KEYS),
        st.one_of(
            TOML_VALUES,
            st.tuples(TOML_NUMBERS, TOML_NUMBERS).map(lambda b: f"[{b[0]}, {b[1]}]"),
            st.sampled_from(WORDS).map(lambda w: f'"{w}"'),
        ),
    ),
    max_size=5,
).map(_toml_table)
LINE = st.one_of(
    st.tuples(NAMES, st.one_of(TOML_SPECS, TOML_VALUES, DEEP)).map(lambda kv: f'"{kv[0]}" = {kv[1]}'),
    st.tuples(NAMES, TOML_SPECS).map(lambda kv: f'["{kv[0]}"]\n' + kv[1][1:-1].replace(", ", "\n")),
    st.text(max_size=20),  # garbage
)


@st.composite
def toml_texts(draw: st.DrawFn) -> str:
    text = "\n".join(draw(st.lists(LINE, max_size=5)))
    for _ in range(draw(st.integers(0, 2))):  # a typo somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(string.printable, max_size=2)) + text[at + draw(st.integers(0, 2)) :]
    return text


class Thing:
    """An arbitrary object in a dict space (exp's API takes any value)."""


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**1024, 10**20]),
    st.integers(4300, 6000).map(lambda digits: 10**digits),  # too long to print (mapped: shown)
    st.floats(),
    st.sampled_from([1e-27, 5e-324, 1.7e308]),
    st.text(max_size=6),
    st.sampled_from(WORDS),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.binary(max_size=3),
    st.frozensets(st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
    st.builds(Thing),
    st.builds(complex, st.floats(-1, 1), st.floats(-1, 1)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.sampled_from([*SPEC_KEYS, "k"]), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def cycle() -> Any:
    loop: list[Any] = []
    loop.append(loop)
    return {"type": "value", "value": loop}


SPECS = st.one_of(
    VALUES,
    st.dictionaries(
        st.sampled_from(SPEC_KEYS),
        st.one_of(
            VALUES,
            st.sampled_from(WORDS),
            st.tuples(SCALARS, SCALARS).map(list),
            st.integers(0, 2_000_000),
        ),
        max_size=5,
    ),
    st.integers(MAX_DEPTH - 2, 3000).map(nested),
    st.builds(cycle),
)
DICTS = st.dictionaries(
    st.one_of(NAMES, st.integers(), st.just(5000).map(lambda d: 10**d)), SPECS, max_size=4
)


def works(space: Space, source: str, toml: bool) -> None:
    """What a space that loaded must do: everything a run asks of it."""
    assert space.names
    size = space.size
    assert size >= 1
    assert len(space.fingerprint()) == 16
    if toml:
        assert Space.from_toml(space.to_toml(), source=source) == space
    # Draws are made when a grid is built; labels format every value of a parameter: both only
    # where that is cheap (the bound on each example's time).
    if any(getattr(p, "n", 1) > 1000 for p in space.params.values()):
        return
    try:
        grid = space.grid(7)
    except SpaceError as e:  # a random parameter that cannot draw its n distinct integers
        refused = str(e), e.param
    else:
        refused = None
    if refused is not None:
        assert refused[0].startswith(f"{source}: [{refused[1]}] could not draw n = ")
        return
    assert grid.size == size
    cheap = all(n <= 10_000 for n in grid.sizes)
    for i in grid.sample(3):
        assert grid.trial(i).params == grid[i]
        if cheap:
            assert grid.label(i)


def fails_well(e: SpaceError, source: str, names: set[str]) -> None:
    """A refusal names the file, and the parameter when one is at fault."""
    assert e.source == source
    text = str(e)
    if e.param is None:
        assert text.startswith(
            tuple(
                f"{source}: {start}"
                for start in (
                    "invalid TOML: ",
                    "cannot read space file: ",
                    "the space defines no",
                    "a space must",
                )
            )
        ), text
    else:
        assert text.startswith(f"{source}: [{e.param}] "), text
        # A name that cannot stand as itself (an empty one) is shown quoted.
        assert e.param in names | {f'"{n}"' for n in names}, (e.param, names)


def names_in(text: str) -> set[str]:
    try:
        return set(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return set()


@given(toml_texts())
@LOADER
def test_any_toml_text_loads_or_is_refused_with_file_and_key(text: str) -> None:
    try:
        space = Space.from_toml(text, source="space.toml")
    except SpaceError as e:
        fails_well(e, "space.toml", names_in(text))
    else:
        works(space, "space.toml", toml=True)


@pytest.fixture(scope="module")
def space_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loader") / "space.toml"


@given(st.one_of(toml_texts().map(lambda t: t.encode()), st.binary(max_size=40)))
@LOADER
def test_any_file_loads_or_is_refused_with_file_and_key(space_file: Path, data: bytes) -> None:
    path = space_file
    path.write_bytes(data)
    try:
        space = Space.from_file(path, source="conf/space.toml")
    except SpaceError as e:
        fails_well(e, "conf/space.toml", names_in(data.decode("utf-8", "replace")))
    else:
        works(space, "conf/space.toml", toml=True)


def shown_name(name: object) -> str:
    try:
        return str(name)
    except ValueError:  # an int too long to print: named by its size
        return f"an integer of {name.bit_length():,} bits"  # type: ignore[attr-defined]


@given(DICTS)
@LOADER
def test_any_dict_loads_or_is_refused_with_key(spec: dict[Any, Any]) -> None:
    try:
        space = Space.from_dict(spec, source="space dict")
    except SpaceError as e:
        fails_well(e, "space dict", {shown_name(k) for k in spec})
    else:
        works(space, "space dict", toml=False)
