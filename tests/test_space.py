"""Unit and property tests of the parameter-space model (pytest_exp/space.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_exp.space import (
    Choice,
    Draw,
    Range,
    Space,
    SpaceError,
    Value,
    format_values,
)
from pytest_exp.trial import Trial, canonical_json, config_id, derive_seed

PROPS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def error(make: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(SpaceError) as info:
        make(*args, **kwargs)
    return str(info.value)


def toml_error(text: str) -> str:
    return error(Space.from_toml, text, source="space.toml")


def values(space: Space, name: str, seed: int = 0) -> list[Any]:
    grid = space.grid(seed)
    return list(grid.values[grid.names.index(name)])


def key(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


# --------------------------------------------------------------------------- exp's README example


@pytest.fixture
def readme() -> Space:
    return Space().add_value("p1", 1).add_list("p2", [True, False]).add_range("p3", low=0, high=10, dtype=int)


def test_readme_size_and_values(readme: Space) -> None:
    assert readme.size == 20
    assert readme.names == ["p1", "p2", "p3"]
    assert values(readme, "p3") == list(range(10))
    assert all(type(v) is int for v in values(readme, "p3"))
    points = list(readme)
    assert len(points) == 20
    assert points[0] == {"p1": 1, "p2": True, "p3": 0}
    assert points[-1] == {"p1": 1, "p2": False, "p3": 9}


def test_readme_points_with_repeats(readme: Space) -> None:
    trials = list(readme.points(repeat=2))
    assert len(trials) == 40
    assert [t.run for t in trials] == [1, 2] * 20
    assert len({t.seed for t in trials}) == 40
    # Both runs of a configuration share its id; configurations have distinct ids.
    assert all(a.id == b.id and a.params == b.params for a, b in zip(trials[::2], trials[1::2], strict=True))
    assert len({t.id for t in trials}) == 20
    assert trials[0].params == {"p1": 1, "p2": True, "p3": 0}


def test_points_are_deterministic_for_a_seed(readme: Space) -> None:
    assert list(readme.points(seed=5)) == list(readme.points(seed=5))
    assert [t.seed for t in readme.points(seed=5)] != [t.seed for t in readme.points(seed=6)]
    # The id depends on the parameters only, not on the seed.
    assert [t.id for t in readme.points(seed=5)] == [t.id for t in readme.points(seed=6)]


def test_docstring_positional_form_is_the_same_space(readme: Space) -> None:
    same = Space().add_value("p1", 1).add_list("p2", [True, False]).add_range("p3", 0, 10, dtype="int")
    assert same == readme
    assert same.fingerprint() == readme.fingerprint()


# --------------------------------------------------------------------------- value and list


def test_value_parameter() -> None:
    space = Space().add_value("opt", "adam").add_value("cfg", {"a": [1, 2], "b": {"c": True}})
    assert space.size == 1
    assert list(space) == [{"opt": "adam", "cfg": {"a": [1, 2], "b": {"c": True}}}]
    assert space.fixed() == {"opt": "adam", "cfg": {"a": [1, 2], "b": {"c": True}}}


def test_list_keeps_first_seen_order_and_dedupes() -> None:
    space = Space().add_list("x", [3, 1, 2, 1, 3])
    assert values(space, "x") == [3, 1, 2]
    assert space.size == 3


def test_list_dedupes_int_and_equal_float() -> None:
    space = Space().add_list("x", [1, 1.0, 2.5, 2])
    assert values(space, "x") == [1, 2.5, 2]
    assert type(values(space, "x")[0]) is int


def test_list_dedupes_nested_values() -> None:
    space = Space().add_list("x", [[1, 2], [1.0, 2], [2, 1]])
    assert values(space, "x") == [[1, 2], [2, 1]]
    tables = Space().add_list("t", [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 2}])
    assert values(tables, "t") == [{"a": 1, "b": 2}, {"a": 2}]


def test_list_numbers_may_mix_int_and_float() -> None:
    assert values(Space().add_list("x", [1, 2.5]), "x") == [1, 2.5]


def test_list_tuple_values_become_lists() -> None:
    space = Space().add_list("x", ((1, 2), (3,)))
    assert list(space) == [{"x": [1, 2]}, {"x": [3]}]


# --------------------------------------------------------------------------- range


@pytest.mark.parametrize(
    ("low", "high", "step", "expected"),
    [
        (1, 1.3, 0.1, [1.0, 1.1, 1.2]),
        (0, 1, 0.1, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
        (0, 0.3, 0.1, [0.0, 0.1, 0.2]),
        (0.7, 1, 0.1, [0.7, 0.8, 0.9]),
        (-1, 1, 0.5, [-1.0, -0.5, 0.0, 0.5]),
        (0, 1, 0.3, [0.0, 0.3, 0.6, 0.9]),
        (0, 3, 1, [0.0, 1.0, 2.0]),
        (0.5, 2.5, 1, [0.5, 1.5]),
        (1e-3, 4e-3, 1e-3, [1e-3, 2e-3, 3e-3]),
    ],
)
def test_float_range_is_exact(low: float, high: float, step: float, expected: list[float]) -> None:
    space = Space().add_range("x", low, high, step)
    got = values(space, "x")
    assert got == expected  # exact float equality: each value is computed in decimal
    assert all(type(v) is float for v in got)
    assert space.size == len(expected)


def test_range_step_defaults_to_one_and_dtype_to_float() -> None:
    space = Space().add_range("x", 0, 3)
    assert values(space, "x") == [0.0, 1.0, 2.0]
    assert all(type(v) is float for v in values(space, "x"))


@pytest.mark.parametrize(
    ("low", "high", "step", "expected"),
    [
        (0, 10, 1, list(range(10))),
        (0, 10, 3, [0, 3, 6, 9]),
        (-5, 5, 4, [-5, -1, 3]),
        (0.0, 4.0, 2.0, [0, 2]),  # integral floats are accepted and become ints
    ],
)
def test_int_range(low: float, high: float, step: float, expected: list[int]) -> None:
    space = Space().add_range("x", low, high, step, dtype="int")
    assert values(space, "x") == expected
    assert all(type(v) is int for v in values(space, "x"))
    param = space.params["x"]
    assert isinstance(param, Range)
    assert (type(param.low), type(param.high), type(param.step)) == (int, int, int)


def test_range_grid_is_lazy_and_indexable() -> None:
    space = Space().add_range("x", 0, 1_000_000, dtype="int")
    grid = space.grid()
    assert len(grid) == 1_000_000
    assert grid[0] == {"x": 0}
    assert grid[-1] == {"x": 999_999}
    assert grid[10:13] == [{"x": 10}, {"x": 11}, {"x": 12}]
    with pytest.raises(IndexError):
        grid[1_000_000]


def test_float_range_never_reaches_high() -> None:
    # -0.1 + 10 * 1e15 is below 1e16 in decimal but rounds to 1e16 as a float.
    got = values(Space().add_range("x", -0.1, 1e16, 1e15), "x")
    assert len(got) == 10
    assert max(got) < 1e16


# --------------------------------------------------------------------------- random


def test_random_defaults() -> None:
    space = Space().add_random("x")
    param = space.params["x"]
    assert param == Draw("x", 0, 1, "uniform", "float", 1)
    assert space.size == 1
    (v,) = values(space, "x")
    assert 0 <= v < 1


def test_random_float_draws_are_sorted_and_in_bounds() -> None:
    got = values(Space().add_random("x", -2, 3, n=50), "x")
    assert len(got) == 50
    assert got == sorted(got)
    assert all(-2 <= v < 3 and type(v) is float for v in got)


def test_random_is_seeded() -> None:
    space = Space().add_random("x", 0, 1, n=5)
    assert values(space, "x", seed=1) == values(space, "x", seed=1)
    assert values(space, "x", seed=1) != values(space, "x", seed=2)
    # A fresh, equal space draws the same values for the same seed.
    assert values(Space().add_random("x", 0, 1, n=5), "x", seed=1) == values(space, "x", seed=1)


def test_random_draws_differ_between_parameters() -> None:
    space = Space().add_random("a", n=3).add_random("b", n=3)
    assert values(space, "a") != values(space, "b")


def test_random_log_uniform() -> None:
    log = values(Space().add_random("lr", 1e-5, 1e-1, prior="log-uniform", n=400), "lr")
    flat = values(Space().add_random("lr", 1e-5, 1e-1, n=400), "lr")
    assert all(1e-5 <= v < 1e-1 for v in log)
    # Half the log-uniform mass lies below the geometric mean 1e-3; about 1% of the uniform mass does.
    assert 150 <= sum(v < 1e-3 for v in log) <= 250
    assert sum(v < 1e-3 for v in flat) <= 20


def test_random_int_draws_are_distinct_ints() -> None:
    got = values(Space().add_random("x", 0, 10, dtype="int", n=5), "x")
    assert len(set(got)) == 5
    assert got == sorted(got)
    assert all(type(v) is int and 0 <= v < 10 for v in got)


def test_random_int_can_take_every_integer() -> None:
    assert values(Space().add_random("x", 0, 10, dtype=int, n=10), "x") == list(range(10))
    assert values(Space().add_random("x", 1, 11, dtype="int", n=10, prior="log-uniform"), "x") == list(
        range(1, 11)
    )


def test_random_that_cannot_draw_enough_integers() -> None:
    # Constructed directly, so the parse-time check on n does not run.
    space = Space([Draw("x", 0, 3, dtype="int", n=5)], source="space.toml")
    assert error(space.grid) == (
        'space.toml: [x] could not draw n = 5 distinct integers from [0, 3) with prior "uniform" '
        "(got 3); lower n or widen bounds"
    )


# --------------------------------------------------------------------------- parsing: forms and names


def test_shorthand_forms() -> None:
    space = Space.from_toml('a = 1\nb = [1, 2]\nc = "adam"\nd = [[1, 2], [3]]\ne = 0.5\nf = true\n')
    assert space.params == {
        "a": Value("a", 1),
        "b": Choice("b", (1, 2)),
        "c": Value("c", "adam"),
        "d": Choice("d", ([1, 2], [3])),
        "e": Value("e", 0.5),
        "f": Value("f", True),
    }
    assert space.size == 4


def test_explicit_tables_equal_the_api() -> None:
    text = """
p1 = {type = "value", value = 1}
p2 = {type = "list", value = [true, false]}

[p3]
type = "range"
bounds = [0, 10]
dtype = "int"

[lr]
type = "random"
bounds = [1e-5, 1e-1]
prior = "log-uniform"
n = 3
"""
    expected = (
        Space()
        .add_value("p1", 1)
        .add_list("p2", [True, False])
        .add_range("p3", 0, 10, dtype=int)
        .add_random("lr", 1e-5, 1e-1, prior="log-uniform", n=3)
    )
    assert Space.from_toml(text) == expected
    assert Space.from_toml(text).size == 60


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "RANGE", "bounds": [0, 4], "step": 2, "dtype": "INT"},
        {"type": "Range", "bounds": [0, 4], "step": 2, "dtype": "Int"},
        {"type": "range", "bounds": [0, 4], "step": 2, "dtype": int},
    ],
)
def test_type_and_dtype_names_are_case_insensitive(spec: dict[str, Any]) -> None:
    assert Space.from_dict({"x": spec}).params["x"] == Range("x", 0, 4, 2, "int")


def test_prior_and_type_case_insensitive_for_random_and_list() -> None:
    space = Space.from_dict(
        {
            "lr": {"type": "Random", "bounds": [1, 100], "prior": "Log-Uniform", "dtype": "FLOAT"},
            "opt": {"type": "LIST", "value": ["adam", "sgd"]},
            "v": {"type": "Value", "value": 3},
        }
    )
    assert space.params["lr"] == Draw("lr", 1, 100, "log-uniform", "float", 1)
    assert space.params["opt"] == Choice("opt", ("adam", "sgd"))
    assert space.params["v"] == Value("v", 3)


def test_random_without_bounds_defaults_to_unit_interval() -> None:
    space = Space.from_dict({"x": {"type": "random", "n": 4}})
    assert space.params["x"] == Draw("x", 0, 1, "uniform", "float", 4)


def test_dict_space_equals_toml_space() -> None:
    spec = {"a": 1, "b": [1, 2, 3], "c": {"type": "range", "bounds": [0, 1], "step": 0.25}}
    text = 'a = 1\nb = [1, 2, 3]\nc = {type = "range", bounds = [0, 1], step = 0.25}\n'
    assert Space.from_dict(spec) == Space.from_toml(text)
    assert Space.from_dict(spec).size == 12
    assert values(Space.from_dict(spec), "c") == [0.0, 0.25, 0.5, 0.75]


def test_from_file(tmp_path: Any) -> None:
    path = tmp_path / "space.toml"
    path.write_text('x = [1, 2]\n[y]\ntype = "range"\nbounds = [0, 3]\ndtype = "int"\n', encoding="utf-8")
    space = Space.from_file(path)
    assert space.source == str(path)
    assert space.size == 6
    assert Space.from_file(str(path)) == space


def test_parameters_keep_file_order_and_last_varies_fastest() -> None:
    space = Space.from_toml('b = [1, 2]\na = ["x", "y", "z"]\nc = 0\n')
    assert space.names == ["b", "a", "c"]
    expected = [{"b": b, "a": a, "c": 0} for b, a in itertools.product([1, 2], ["x", "y", "z"])]
    assert list(space) == expected
    grid = space.grid()
    assert [grid[i] for i in range(len(grid))] == expected
    assert grid[-1] == expected[-1]


def test_empty_api_space_has_one_empty_point() -> None:
    space = Space()
    assert space.size == 1
    assert list(space) == [{}]
    assert space.grid().label(0) == ""


# --------------------------------------------------------------------------- ids


def test_label_example() -> None:
    space = Space().add_list("x", [-10, 5]).add_list("lr", [0.00153, 0.1]).add_list("opt", ["adam", "sgd"])
    grid = space.grid()
    assert grid.label(0) == "x=-10-lr=0.00153-opt=adam"
    assert grid.label(3) == "x=-10-lr=0.1-opt=sgd"
    assert grid.label(-1) == "x=5-lr=0.1-opt=sgd"
    assert len({grid.label(i) for i in range(len(grid))}) == len(grid)


@pytest.mark.parametrize(
    ("vals", "expected"),
    [
        ([0.123456], ["0.123"]),
        ([1.0, 2.0], ["1", "2"]),
        ([0.1001, 0.1002], ["0.1001", "0.1002"]),
        ([1.0, 1.0001], ["1", "1.0001"]),
        ([1, 1.0001], ["1", "1.0001"]),
        ([0.1, 0.1 + 1e-15], ["0.1", "0.100000000000001"]),
        ([1e-5, 2.5e-7], ["1e-5", "2.5e-7"]),
        ([1e20, -3e-12], ["1e20", "-3e-12"]),
        ([123456.0], ["1.23e5"]),
        ([1234.5, 1231.5], ["1234", "1232"]),
        ([-0.5, float("inf")], ["-0.5", "inf"]),
        ([True, False], ["True", "False"]),
        (["adam", "s g d"], ["adam", "s g d"]),
        ([[1, 2], [3]], ["[1,2]", "[3]"]),
        ([[0.1, 2.5], [12345.0, 12346.0]], ["[0.1,2.5]", "[12345,12346]"]),
        ([{"a": 1, "b": "c"}], ["{a:1,b:c}"]),
        ([dt.date(2024, 1, 2)], ["2024-01-02"]),
    ],
)
def test_format_values(vals: list[Any], expected: list[str]) -> None:
    assert format_values(vals) == expected


def test_labels_of_nested_floats_stay_distinct() -> None:
    grid = Space().add_list("x", [[12345.0], [12346.0]]).grid()
    assert [grid.label(0), grid.label(1)] == ["x=[12345]", "x=[12346]"]


def test_labels_of_ranges_and_values() -> None:
    grid = Space().add_value("p", 1).add_range("x", 0, 1, 0.1).add_range("n", -10, -7, dtype=int).grid()
    assert grid.label(0) == "p=1-x=0-n=-10"
    assert grid.label(len(grid) - 1) == "p=1-x=0.9-n=-8"
    assert [grid.label(3 * i) for i in range(10)] == [f"p=1-x={i / 10:g}-n=-10" for i in range(10)]


def test_labels_of_random_floats_are_distinct() -> None:
    grid = Space().add_random("lr", 1e-5, 1e-1, prior="log-uniform", n=30).grid()
    labels = [grid.label(i) for i in range(len(grid))]
    assert len(set(labels)) == 30
    assert all(label.startswith("lr=") for label in labels)


@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=20, unique=True))
@PROPS
def test_float_ids_are_distinct_and_have_three_digits(vals: list[float]) -> None:
    texts = format_values(vals)
    assert len(set(texts)) == len(texts)
    for v, text in zip(vals, texts, strict=True):
        if math.isfinite(v) and v != 0:
            # Rounded or not, the text keeps at least 3 significant digits of the value.
            assert abs(Decimal(text.replace("e", "E")) - Decimal(v)) <= abs(Decimal(v)) * Decimal("0.005")


# --------------------------------------------------------------------------- sampling


def test_grid_sample() -> None:
    grid = Space().add_range("x", 0, 100, dtype=int).add_list("y", ["a", "b"]).grid(seed=3)
    picked = grid.sample(10)
    assert len(picked) == 10
    assert len(set(picked)) == 10
    assert picked == sorted(picked)
    assert all(0 <= i < 200 for i in picked)
    assert grid.sample(10) == picked
    assert grid.sample(10, seed=3) == picked
    assert grid.sample(10, seed=4) != picked
    assert grid.sample(200) == list(range(200))
    assert grid.sample(1000) == list(range(200))
    assert grid.sample(0) == []


def test_space_sample() -> None:
    space = Space().add_range("x", 0, 50, dtype=int).add_value("c", "k")
    got = space.sample(5, seed=1)
    assert len(got) == 5
    assert len({p["x"] for p in got}) == 5
    assert all(p["c"] == "k" for p in got)
    assert space.sample(5, seed=1) == got
    assert space.sample(5, seed=2) != got
    assert space.sample(100) == list(space)


def test_trials_of_a_sample() -> None:
    grid = Space().add_list("x", [1, 2, 3, 4]).grid(seed=9)
    trials = list(grid.trials(repeat=3, indices=grid.sample(2)))
    assert len(trials) == 6
    assert [t.run for t in trials] == [1, 2, 3, 1, 2, 3]
    assert len({t.seed for t in trials}) == 6


# --------------------------------------------------------------------------- errors


def test_space_error_str() -> None:
    assert str(SpaceError("bad")) == "bad"
    assert str(SpaceError("bad", param="x")) == "[x] bad"
    assert str(SpaceError("bad", source="f.toml")) == "f.toml: bad"
    e = SpaceError("bad", source="f.toml", param="x")
    assert str(e) == "f.toml: [x] bad"
    assert (e.message, e.source, e.param) == ("bad", "f.toml", "x")
    assert isinstance(e, ValueError)


def test_toml_syntax_error() -> None:
    assert toml_error("x = 1\ny = [1,\n  2,, 3]\n") == (
        "space.toml: invalid TOML: Invalid value (at line 3, column 5)"
    )
    assert toml_error("x = 1\nx = 2\n") == (
        "space.toml: invalid TOML: Cannot overwrite a value (at line 2, column 6)"
    )


def test_missing_file(tmp_path: Any) -> None:
    path = tmp_path / "missing.toml"
    assert error(Space.from_file, path) == f"{path}: space file not found"


def test_file_errors_use_the_given_source(tmp_path: Any) -> None:
    path = tmp_path / "space.toml"
    assert error(Space.from_file, path, source="space.toml") == "space.toml: space file not found"
    path.write_text("x = []\n", encoding="utf-8")
    assert error(Space.from_file, path, source="space.toml") == (
        "space.toml: [x] a list needs at least one value (got [])"
    )


def test_unreadable_file(tmp_path: Any) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"\xff = 1\n")
    assert error(Space.from_file, path) == (
        f"{path}: cannot read space file: "
        "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    )


def test_error_in_file_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "space.toml"
    path.write_text('x = {type = "range"}\n', encoding="utf-8")
    assert error(Space.from_file, path) == (
        f'{path}: [x] missing key "bounds" (expected bounds = [low, high])'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "space.toml: the space defines no parameters"),
        ("# only a comment\n", "space.toml: the space defines no parameters"),
        (
            "x = {bounds = [0, 1]}",
            'space.toml: [x] missing key "type" (expected one of "value", "list", "range", "random")',
        ),
        (
            'x = {type = "ranges", bounds = [0, 1]}',
            'space.toml: [x] unknown type "ranges" '
            '(expected one of "value", "list", "range", "random"; did you mean "range"?)',
        ),
        (
            'x = {type = "Rnd"}',
            'space.toml: [x] unknown type "Rnd" '
            '(expected one of "value", "list", "range", "random"; did you mean "random"?)',
        ),
        (
            'x = {type = "grid"}',
            'space.toml: [x] unknown type "grid" (expected one of "value", "list", "range", "random")',
        ),
        (
            "x = {type = 1}",
            'space.toml: [x] unknown type 1 (expected one of "value", "list", "range", "random")',
        ),
        (
            'x = {type = "range", bounds = [0, 1], stp = 0.1}',
            'space.toml: [x] unknown key "stp" for type "range" '
            '(expected "bounds", "step", "dtype"; did you mean "step"?)',
        ),
        (
            'x = {type = "random", bounds = [0, 1], priors = "uniform"}',
            'space.toml: [x] unknown key "priors" for type "random" '
            '(expected "bounds", "prior", "dtype", "n"; did you mean "prior"?)',
        ),
        (
            'x = {type = "value", value = 1, zzz = 2}',
            'space.toml: [x] unknown key "zzz" for type "value" (expected "value")',
        ),
        ('x = {type = "list"}', 'space.toml: [x] missing key "value" for type "list"'),
        ('x = {type = "value"}', 'space.toml: [x] missing key "value" for type "value"'),
        ('x = {type = "list", value = 1}', "space.toml: [x] a list needs value = [..] (got 1)"),
        (
            'x = {type = "range"}',
            'space.toml: [x] missing key "bounds" (expected bounds = [low, high])',
        ),
        (
            'x = {type = "range", bounds = [1]}',
            "space.toml: [x] bounds must be [low, high] of two finite numbers (got [1])",
        ),
        (
            'x = {type = "range", bounds = 1}',
            "space.toml: [x] bounds must be [low, high] of two finite numbers (got 1)",
        ),
        (
            'x = {type = "range", bounds = [0, 1, 2]}',
            "space.toml: [x] bounds must be [low, high] of two finite numbers (got [0, 1, 2])",
        ),
        (
            'x = {type = "random", bounds = ["a", 1]}',
            'space.toml: [x] bounds must be [low, high] of two finite numbers (got ["a", 1])',
        ),
        (
            'x = {type = "range", bounds = [true, 2]}',
            "space.toml: [x] bounds must be [low, high] of two finite numbers (got [true, 2])",
        ),
        (
            'x = {type = "range", bounds = [0, inf]}',
            "space.toml: [x] bounds must be [low, high] of two finite numbers (got [0, inf])",
        ),
        (
            'x = {type = "random", bounds = [nan, 1]}',
            "space.toml: [x] bounds must be [low, high] of two finite numbers (got [nan, 1])",
        ),
        (
            'x = {type = "range", bounds = [1, 1]}',
            "space.toml: [x] bounds must be [low, high] with low < high (got [1, 1])",
        ),
        (
            'x = {type = "random", bounds = [2, 1.5]}',
            "space.toml: [x] bounds must be [low, high] with low < high (got [2, 1.5])",
        ),
        ('x = {type = "range", bounds = [0, 1], step = 0}', "space.toml: [x] step must be > 0 (got 0)"),
        (
            'x = {type = "range", bounds = [0, 1], step = -0.5}',
            "space.toml: [x] step must be > 0 (got -0.5)",
        ),
        (
            'x = {type = "range", bounds = [0, 1], step = "a"}',
            'space.toml: [x] step must be a finite number > 0 (got "a")',
        ),
        (
            'x = {type = "range", bounds = [0, 1], step = nan}',
            "space.toml: [x] step must be a finite number > 0 (got nan)",
        ),
        (
            'x = {type = "range", bounds = [0.5, 3], dtype = "int"}',
            'space.toml: [x] dtype "int" needs integer bounds and step (got bounds [0.5, 3])',
        ),
        (
            'x = {type = "range", bounds = [0, 3], step = 0.5, dtype = "int"}',
            'space.toml: [x] dtype "int" needs integer bounds and step (got step 0.5)',
        ),
        (
            'x = {type = "random", bounds = [0, 2.5], dtype = "int"}',
            'space.toml: [x] dtype "int" needs integer bounds and step (got bounds [0, 2.5])',
        ),
        (
            'x = {type = "random", bounds = [0, 1], prior = "log-uniform"}',
            'space.toml: [x] prior "log-uniform" needs low > 0 (got bounds [0, 1])',
        ),
        (
            'x = {type = "random", bounds = [-1, 1], prior = "log-uniform"}',
            'space.toml: [x] prior "log-uniform" needs low > 0 (got bounds [-1, 1])',
        ),
        (
            'x = {type = "random", prior = "loguniform"}',
            'space.toml: [x] unknown prior "loguniform" '
            '(expected one of "uniform", "log-uniform"; did you mean "log-uniform"?)',
        ),
        (
            'x = {type = "random", prior = "gaussian"}',
            'space.toml: [x] unknown prior "gaussian" (expected one of "uniform", "log-uniform")',
        ),
        (
            'x = {type = "range", bounds = [0, 1], dtype = "integer"}',
            'space.toml: [x] unknown dtype "integer" (expected one of "float", "int"; did you mean "int"?)',
        ),
        (
            'x = {type = "random", dtype = "str"}',
            'space.toml: [x] unknown dtype "str" (expected one of "float", "int")',
        ),
        ('x = {type = "random", n = 0}', "space.toml: [x] n must be an integer >= 1 (got 0)"),
        ('x = {type = "random", n = -3}', "space.toml: [x] n must be an integer >= 1 (got -3)"),
        ('x = {type = "random", n = 2.0}', "space.toml: [x] n must be an integer >= 1 (got 2.0)"),
        ('x = {type = "random", n = 1.5}', "space.toml: [x] n must be an integer >= 1 (got 1.5)"),
        ('x = {type = "random", n = true}', "space.toml: [x] n must be an integer >= 1 (got true)"),
        ('x = {type = "random", n = "3"}', 'space.toml: [x] n must be an integer >= 1 (got "3")'),
        (
            'x = {type = "random", bounds = [0, 3], dtype = "int", n = 4}',
            "space.toml: [x] n = 4 exceeds the 3 integers in [0, 3)",
        ),
        ("x = []", "space.toml: [x] a list needs at least one value (got [])"),
        ('x = {type = "list", value = []}', "space.toml: [x] a list needs at least one value (got [])"),
        (
            'x = [1, "a"]',
            'space.toml: [x] list values must all be of one kind (got number 1, string "a")',
        ),
        (
            'x = [1, 2.5, "a", "b"]',
            'space.toml: [x] list values must all be of one kind (got number 1, string "a")',
        ),
        (
            "x = [1, true]",
            "space.toml: [x] list values must all be of one kind (got number 1, bool true)",
        ),
        (
            "x = [[1], {a = 1}]",
            "space.toml: [x] list values must all be of one kind (got array [1], table {a = 1})",
        ),
    ],
)
def test_bad_toml(text: str, message: str) -> None:
    assert toml_error(text) == message


def test_bad_dict_spaces() -> None:
    assert error(Space.from_dict, {}) == "the space defines no parameters"
    assert error(Space.from_dict, {}, source="space dict") == "space dict: the space defines no parameters"
    assert (
        error(Space.from_dict, [1, 2], source="s") == "s: a space must be a table of parameters (got [1, 2])"
    )
    assert error(Space.from_dict, {"x": {"type": "range", "bounds": (0, 1), "dtype": str}}) == (
        '[x] unknown dtype <class \'str\'> (expected one of "float", "int")'
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda s: s.add_value("a", 2), "[a] parameter defined twice"),
        (lambda s: s.add_list("a", [1, 2]), "[a] parameter defined twice"),
        (lambda s: s.add_range("a", 0, 1), "[a] parameter defined twice"),
        (lambda s: s.add_random("a"), "[a] parameter defined twice"),
        (lambda s: s.add_list("b", []), "[b] a list needs at least one value (got [])"),
        (lambda s: s.add_list("b", "abc"), '[b] a list needs value = [..] (got "abc")'),
        (
            lambda s: s.add_list("b", [1.5, "x", None]),
            '[b] list values must all be of one kind (got number 1.5, string "x", NoneType None)',
        ),
        (lambda s: s.add_range("b", 0, 1, 0), "[b] step must be > 0 (got 0)"),
        (
            lambda s: s.add_range("b", 1, 0),
            "[b] bounds must be [low, high] with low < high (got [1, 0])",
        ),
        (
            lambda s: s.add_range("b", 0, 10, 2.5, dtype=int),
            '[b] dtype "int" needs integer bounds and step (got step 2.5)',
        ),
        (
            lambda s: s.add_random("b", 0, 2, dtype="int", n=3),
            "[b] n = 3 exceeds the 2 integers in [0, 2)",
        ),
        (
            lambda s: s.add_random("b", prior="log-uniform"),
            '[b] prior "log-uniform" needs low > 0 (got bounds [0, 1])',
        ),
        (lambda s: s.add_random("b", n=0), "[b] n must be an integer >= 1 (got 0)"),
        (
            lambda s: s.add_random("b", dtype=bool),
            '[b] unknown dtype <class \'bool\'> (expected one of "float", "int")',
        ),
    ],
)
def test_bad_api_calls(build: Any, message: str) -> None:
    space = Space().add_value("a", 1)
    assert error(build, space) == message
    assert space.names == ["a"]  # a failed add leaves the space as it was


def test_api_errors_name_the_source() -> None:
    space = Space.from_toml("a = 1", source="space.toml")
    assert error(space.add_value, "a", 2) == "space.toml: [a] parameter defined twice"


def test_parameter_name_is_reported_as_written() -> None:
    assert toml_error('"a b" = {type = "range"}') == (
        'space.toml: [a b] missing key "bounds" (expected bounds = [low, high])'
    )


# --------------------------------------------------------------------------- serialization


def test_to_dict_and_to_toml() -> None:
    space = (
        Space()
        .add_value("p1", 1)
        .add_list("p2", [True, False])
        .add_range("p3", 0, 10, dtype=int)
        .add_random("lr", 1e-5, 0.1, prior="log-uniform", n=3)
    )
    assert space.to_dict() == {
        "p1": {"type": "value", "value": 1},
        "p2": {"type": "list", "value": [True, False]},
        "p3": {"type": "range", "bounds": [0, 10], "step": 1, "dtype": "int"},
        "lr": {"type": "random", "bounds": [1e-5, 0.1], "prior": "log-uniform", "dtype": "float", "n": 3},
    }
    assert space.to_toml() == (
        '[p1]\ntype = "value"\nvalue = 1\n'
        "\n"
        '[p2]\ntype = "list"\nvalue = [true, false]\n'
        "\n"
        '[p3]\ntype = "range"\nbounds = [0, 10]\nstep = 1\ndtype = "int"\n'
        "\n"
        '[lr]\ntype = "random"\nbounds = [1e-05, 0.1]\nprior = "log-uniform"\ndtype = "float"\nn = 3\n'
    )
    assert Space.from_toml(space.to_toml()) == space


def test_to_toml_quotes_odd_names_and_strings() -> None:
    odd = [{"k k": 1, "é": [1.5, -2e-30]}]
    space = Space().add_value('a "b"', 'q"\\\n\t\x00\x7f é').add_list(" x.y ", odd)
    again = Space.from_toml(space.to_toml())
    assert again == space
    assert again.fingerprint() == space.fingerprint()


def test_fingerprint_ignores_formatting_but_not_meaning() -> None:
    a = Space.from_toml('x = [1, 2]\n[y]\ntype = "range"\nbounds = [0, 1]\nstep = 0.5\n')
    b = Space.from_toml(
        'x = {type = "list", value = [1, 2, 1]}\ny = {type = "RANGE", step = 0.5, bounds = [0, 1]}'
    )
    assert a.fingerprint() == b.fingerprint()
    # Order is meaning: it decides the grid's order and the ids.
    reordered = Space.from_toml('y = {type = "range", step = 0.5, bounds = [0, 1]}\nx = [1, 2]')
    assert a.fingerprint() != reordered.fingerprint()
    assert a != reordered
    c = Space.from_toml('x = [1, 2]\n[y]\ntype = "range"\nbounds = [0, 1]\nstep = 0.25\n')
    assert a.fingerprint() != c.fingerprint()
    assert len(a.fingerprint()) == 16


def test_equality() -> None:
    assert Space().add_list("x", [1, 2]) == Space().add_list("x", [1, 2])
    assert Space().add_list("x", [1, 2]) != Space().add_list("x", [2, 1])
    assert Space().add_value("a", 1).add_value("b", 2) != Space().add_value("b", 2).add_value("a", 1)
    assert Space() != "space"
    # Python says True == 1 == 1.0; the grids and ids differ, so the spaces do too.
    assert Space().add_value("x", True) != Space().add_value("x", 1)
    assert Space().add_value("x", 1) != Space().add_value("x", 1.0)
    assert Space().add_value("x", True).fingerprint() != Space().add_value("x", 1).fingerprint()
    assert "Range" in repr(Space().add_range("x", 0, 1))


# --------------------------------------------------------------------------- Hypothesis properties

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False)
# Characters TOML must escape or quote turn up often, not once in a thousand examples.
TEXT = st.text(st.characters() | st.sampled_from('"\\\x7f\x00\n\t é☃𝄞'), max_size=8)
SCALARS = st.one_of(
    INT64,
    FLOATS,
    st.booleans(),
    TEXT,
    st.dates(),
    st.times(),
    st.datetimes(timezones=st.sampled_from([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5))])),
)
TOML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
NAMES = st.text(min_size=1, max_size=6).filter(str.strip)  # a blank name is refused


@st.composite
def list_values(draw: Any) -> list[Any]:
    element = draw(
        st.sampled_from(
            [
                st.integers(-100, 100),
                st.floats(-1e6, 1e6),
                st.integers(-5, 5) | st.floats(-5, 5),
                st.booleans(),
                TEXT,
                st.lists(SCALARS, max_size=3),
                st.dictionaries(TEXT, SCALARS, max_size=3),
            ]
        )
    )
    return draw(st.lists(element, min_size=1, max_size=5))


@st.composite
def ranges(draw: Any) -> dict[str, Any]:
    if draw(st.booleans()):
        low = draw(st.integers(-1000, 1000))
        high = low + draw(st.integers(1, 500))
        step = draw(st.integers(1, 100))
        return {"low": low, "high": high, "step": step, "dtype": "int"}
    low = draw(st.floats(-1e4, 1e4) | st.integers(-50, 50).map(lambda i: i / 10))
    width = draw(st.floats(1e-3, 1e4) | st.integers(1, 50).map(lambda i: i / 10))
    high = low + width
    assume(low < high)
    step = draw(st.floats(width / 50, width * 2) | st.integers(1, 9).map(lambda i: i / 10))
    return {"low": low, "high": high, "step": step, "dtype": draw(st.sampled_from(["float", "FLOAT"]))}


@st.composite
def randoms(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["float", "log", "int", "int-log"]))
    n = draw(st.integers(1, 8))
    if kind in ("int", "int-log"):
        low = draw(st.integers(1, 1000) if kind == "int-log" else st.integers(-1000, 1000))
        high = low + draw(st.integers(n, 200))
        prior = "log-uniform" if kind == "int-log" else "uniform"
        return {"low": low, "high": high, "prior": prior, "dtype": "int", "n": n}
    if kind == "log":
        low = draw(st.floats(1e-300, 1e10))
        high = low * draw(st.floats(1.0001, 1e10))
        assume(math.isfinite(high))
        return {"low": low, "high": high, "prior": "log-uniform", "dtype": "float", "n": n}
    low = draw(st.floats(-1e10, 1e10))
    high = low + draw(st.floats(1e-6, 1e10))
    assume(low < high)
    return {"low": low, "high": high, "prior": "uniform", "dtype": "float", "n": n}


@st.composite
def spaces(draw: Any, max_size: int | None = 2000) -> Space:
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    space = Space()
    for name in names:
        kind = draw(st.sampled_from(["value", "list", "range", "random"]))
        if kind == "value":
            space.add_value(name, draw(TOML_VALUES))
        elif kind == "list":
            space.add_list(name, draw(list_values()))
        elif kind == "range":
            space.add_range(name, **draw(ranges()))
        else:
            space.add_random(name, **draw(randoms()))
    if max_size is not None:
        assume(space.size <= max_size)
    return space


@given(spaces())
@PROPS
def test_size_is_product_of_parameter_sizes(space: Space) -> None:
    sizes = [p.grid_size for p in space.params.values()]
    grid = space.grid(seed=1)
    assert space.size == math.prod(sizes) == len(grid) == len(list(grid))
    assert [len(v) for v in grid.values] == sizes


@given(spaces(max_size=500), st.integers(0, 2**32))
@PROPS
def test_grid_points_lie_in_their_parameters(space: Space, seed: int) -> None:
    grid = space.grid(seed)
    for point in grid:
        assert list(point) == space.names
        for name, v in point.items():
            p = space.params[name]
            if isinstance(p, Value):
                assert key(v) == key(p.value)
            elif isinstance(p, Choice):
                assert key(v) in {key(c) for c in p.values}
            else:
                assert p.low <= v < p.high
                assert type(v) is (int if p.dtype == "int" else float)


@given(spaces(max_size=200), st.integers(0, 2**32), st.integers(1, 3))
@PROPS
def test_trial_ids_and_seeds_are_those_of_their_definition(space: Space, seed: int, run: int) -> None:
    # Grid.trial puts the canonical text together from the point's values: it must stay config_id.
    grid = space.grid(seed)
    for i, point in enumerate(grid):
        cid = config_id(point)
        expected = Trial(cid, run, derive_seed(seed, cid, run), point)
        assert repr(grid.trial(i, run)) == repr(expected)  # repr: NaN != NaN


def test_trial_ids_of_every_kind_of_value() -> None:
    space = Space.from_dict(
        {
            "zeta": [1.5, math.nan, math.inf, -0.0, 1e300, 7],
            "s": ["\u00e9\u2603", 'a"b\\', "\udc80"],
            "b": [True, False],
            "alpha": [[1, {"b": 2, "a": 1}], [{"y": 1, "x": [2.0]}]],
            "t": [{"q": 1, "c": [None]}],
            "d": [dt.date(2024, 1, 2), dt.time(3, 4)],
        }
    )
    grid = space.grid(5)
    for i, point in enumerate(grid):
        assert grid.trial(i).id == hashlib.sha256(canonical_json(point).encode()).hexdigest()[:12]
        assert grid.trial(i).id == config_id(point)
    # As computed before Grid.trial was taken apart (the stored studies' ids):
    assert grid.trial(0).id == "62c853a05be5"
    assert (grid.trial(143, 2).id, grid.trial(143, 2).seed) == ("f56ef9d428dc", 974481019)


@given(spaces(max_size=None))
@PROPS
def test_parameter_grid_values_are_distinct_and_ordered(space: Space) -> None:
    grid = space.grid(seed=7)
    for p, vals in zip(space.params.values(), grid.values, strict=True):
        if isinstance(p, (Range, Draw)):
            vals = list(vals)
            assert vals == sorted(vals)
            if isinstance(p, Range) or p.dtype == "int":
                assert len(set(vals)) == len(vals)
        if isinstance(p, Choice):
            assert len({key(v) for v in vals}) == len(vals)


@given(spaces(max_size=None))
@PROPS
def test_iterating_grid_values_gives_what_indexing_gives(space: Space) -> None:
    for vals in space.grid(seed=7).values:
        assert list(vals) == [vals[i] for i in range(len(vals))]
        assert [type(v) for v in vals] == [type(vals[i]) for i in range(len(vals))]


@given(spaces(max_size=None))
@PROPS
def test_toml_round_trip(space: Space) -> None:
    text = space.to_toml()
    again = Space.from_toml(text)
    assert again == space
    assert again.to_dict() == space.to_dict()
    assert again.fingerprint() == space.fingerprint()
    assert again.to_toml() == text


@given(spaces(max_size=None))
@PROPS
def test_dict_round_trip(space: Space) -> None:
    again = Space.from_dict(space.to_dict())
    assert again == space
    assert again.fingerprint() == space.fingerprint()


@given(spaces(max_size=300), st.integers(0, 400), st.integers(0, 2**32))
@PROPS
def test_sample_returns_distinct_grid_points(space: Space, k: int, seed: int) -> None:
    grid = space.grid(seed)
    indices = grid.sample(k)
    assert len(indices) == min(k, len(grid))
    assert len(set(indices)) == len(indices)
    assert indices == sorted(indices)
    points = space.sample(k, seed=seed)
    assert points == [grid[i] for i in indices]
    assert space.sample(k, seed=seed) == points
    everything = [key(p) for p in grid]
    assert all(key(p) in everything for p in points)


@given(spaces(max_size=300))
@PROPS
def test_labels_are_distinct_for_numeric_spaces(space: Space) -> None:
    numeric = Space([p for p in space.params.values() if not isinstance(p, (Value, Choice))])
    grid = numeric.grid(seed=3)
    vals_distinct = all(len(set(v)) == len(v) for v in grid.values)
    assume(vals_distinct)
    labels = [grid.label(i) for i in range(len(grid))]
    assert len(set(labels)) == len(labels)


def test_random_n_has_the_grid_limit() -> None:
    with pytest.raises(SpaceError) as e:
        Space.from_dict({"r": {"type": "random", "n": 1_000_001}}, source="s.toml")
    assert str(e.value) == "s.toml: [r] n = 1,000,001 draws is over the limit of 1,000,000"


def test_numpy_values_become_plain_python() -> None:
    np = pytest.importorskip("numpy")
    space = Space.from_dict({"lr": np.array([0.1, 0.01]), "n": np.int64(3), "flag": np.bool_(True)})
    space.add_range("w", np.float64(0), np.int64(2), dtype=int)
    points = list(space)
    assert points[0] == {"lr": 0.1, "n": 3, "flag": True, "w": 0}
    assert {type(v) for p in points for v in p.values()} == {float, int, bool}


def test_rows_agree_with_indexing_for_full_and_sampled_grids() -> None:
    space = Space.from_dict(
        {
            "a": [1, 2, 3],
            "r": {"type": "random", "n": 2},
            "s": {"type": "range", "bounds": [0, 1], "step": 0.5},
        }
    )
    grid = space.grid(3)
    expected = [(i, (grid[i]["s"], grid[i]["a"]), grid.label(i)) for i in range(len(grid))]
    assert list(grid.rows(["s", "a"])) == expected
    assert list(grid.rows(["s", "a"], [1, 7])) == [expected[1], expected[7]]
    assert [values for _, values, _ in grid.rows([])] == [()] * 12


def test_a_parameter_needs_a_name() -> None:
    with pytest.raises(SpaceError) as e:
        Space(source="s.toml").add_list(" ", [1])
    assert str(e.value) == 's.toml: [" "] a parameter needs a name (got an empty one)'
