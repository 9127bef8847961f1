"""The Optuna backend driven directly: points inside the space and plain, seeded, pending points
seen as Optuna sees running trials, histories replayed, failures told, and the very points a
direct Optuna ask/tell loop evaluates."""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial  # noqa: E402

from pytest_exp.space import Space, SpaceError  # noqa: E402
from pytest_exp.study import optuna as backend  # noqa: E402
from pytest_exp.study.study import Study  # noqa: E402
from pytest_exp.trial import Objective, Point, derive_seed  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
NEEDS_TORCH = pytest.mark.skipif(not HAS_TORCH, reason="optuna:gp needs torch, which is not installed")
CPU_VARIANTS = [v for v in backend.VARIANTS if v != "gp"]
SHAPES = [[1, 2], [3, 4], [5, 6]]

MIXED = {
    "x": {"type": "range", "bounds": [-5, 10]},
    "lr": {"type": "random", "bounds": [1e-5, 0.1], "prior": "log-uniform"},
    "layers": {"type": "range", "bounds": [1, 8], "dtype": "int"},
    "opt": ["adam", "sgd", "rmsprop"],
    "batch": 32,
    "shape": SHAPES,
}
# What a user of Optuna writes for MIXED (lists as their values, not indices).
DIRECT = {
    "x": FloatDistribution(-5, 10),
    "lr": FloatDistribution(1e-5, 0.1, log=True),
    "layers": IntDistribution(1, 8),
    "opt": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
    "shape": CategoricalDistribution([0, 1, 2]),
}


def space() -> Space:
    return Space.from_dict(MIXED, source="mixed.toml")


def loss(p: dict[str, Any]) -> float:
    if "x" not in p:  # a space of floats only
        return float(sum(p.values()))
    shape = p["shape"] if isinstance(p["shape"], int) else SHAPES.index(p["shape"])
    return (
        (p["x"] - 1) ** 2
        + (math.log10(p["lr"]) + 3) ** 2
        + abs(p["layers"] - 3)
        + ["adam", "sgd", "rmsprop"].index(p["opt"])
        + shape
    )


def create(variant: str, seed: int = 0, s: Space | None = None) -> backend.OptunaOptimizer:
    return backend.create(space() if s is None else s, {"seed": seed, "variant": variant})


def study_of(optimizer: backend.OptunaOptimizer, budget: int = 50) -> Study:
    return Study("key", Objective.parse("loss:min"), budget, optimizer)


def run(s: Study, n: int, start: int = 0) -> list[Point]:
    points = []
    for i in range(start, start + n):
        p = s.ask(i)
        points.append(p)
        s.tell(i, loss(p))
    return points


def direct_study(sampler: Any) -> Any:
    return optuna.create_study(direction="minimize", sampler=sampler)


OPTS = ["adam", "sgd", "rmsprop"]


def as_point(params: dict[str, Any]) -> Point:
    """A trial's params as a point: lists as values (ours hold indices, DIRECT's opt a value)."""
    return {
        "x": params["x"],
        "lr": params["lr"],
        "layers": params["layers"],
        "opt": OPTS[params["opt"]] if isinstance(params["opt"], int) else params["opt"],
        "batch": 32,
        "shape": SHAPES[params["shape"]],
    }


def direct_params(p: Point) -> dict[str, Any]:
    """A point as DIRECT's params: the shape as its index."""
    return {**{k: p[k] for k in DIRECT}, "shape": SHAPES.index(p["shape"])}


def assert_inside(p: Point) -> None:
    assert list(p) == ["x", "lr", "layers", "opt", "batch", "shape"]
    assert type(p["x"]) is float
    assert -5 <= p["x"] <= 10
    assert type(p["lr"]) is float
    assert 1e-5 <= p["lr"] <= 0.1
    assert type(p["layers"]) is int
    assert 1 <= p["layers"] <= 8
    assert type(p["opt"]) is str
    assert p["opt"] in ("adam", "sgd", "rmsprop")
    assert type(p["batch"]) is int
    assert p["batch"] == 32
    assert p["shape"] in SHAPES
    assert all(type(v) is int for v in p["shape"])


@pytest.fixture(autouse=True)
def _optuna_logging():
    # Optuna's default is INFO; each test starts there so that the silencing is what is tested.
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    yield
    optuna.logging.set_verbosity(before)


# --------------------------------------------------------------------------- the module's face


def test_the_contract() -> None:
    assert backend.SETTINGS == ()
    assert backend.VARIANTS == ("tpe", "cmaes", "qmc", "random", "nsga2", "gp")
    assert backend.DEFAULT_VARIANT == "tpe"


def test_distributions_of_a_space() -> None:
    assert backend.distributions(space()) == {
        "x": FloatDistribution(-5.0, 10.0),
        "lr": FloatDistribution(1e-5, 0.1, log=True),
        "layers": IntDistribution(1, 8),
        "opt": CategoricalDistribution([0, 1, 2]),
        "shape": CategoricalDistribution([0, 1, 2]),
    }
    ints = Space.from_dict(
        {"n": {"type": "random", "bounds": [1, 1000], "prior": "log-uniform", "dtype": "int"}}
    )
    assert backend.distributions(ints) == {"n": IntDistribution(1, 1000, log=True)}


def test_seeds_numpy_takes_pass_unchanged_and_others_map_by_hash() -> None:
    assert [backend.random_state(s) for s in (0, 7, 2**32 - 1)] == [0, 7, 2**32 - 1]
    assert backend.random_state(2**32) == derive_seed(2**32, "optuna")
    assert backend.random_state(-1) == derive_seed(-1, "optuna")
    huge = [create("tpe", seed).ask() for seed in (-1, 2**100)]
    assert huge[0] == create("tpe", derive_seed(-1, "optuna")).ask()
    assert huge[1] == create("tpe", derive_seed(2**100, "optuna")).ask()


def test_unknown_variant_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown optuna variant 'bogus' \\(expected one of tpe, cmaes"):
        backend.create(space(), {"seed": 0, "variant": "bogus"})
    with pytest.raises(TypeError, match="settings it does not read: surrogate"):
        backend.create(space(), {"seed": 0, "variant": "tpe", "surrogate": "GP"})


def test_variant_defaults_to_tpe() -> None:
    opt = backend.create(space(), {"seed": 0})
    assert opt.variant == "tpe"
    assert isinstance(opt.study.sampler, optuna.samplers.TPESampler)


@pytest.mark.parametrize(
    ("variant", "sampler"),
    [
        ("tpe", "TPESampler"),
        ("cmaes", "CmaEsSampler"),
        ("qmc", "QMCSampler"),
        ("random", "RandomSampler"),
        ("nsga2", "NSGAIISampler"),
    ],
)
def test_each_variant_is_its_sampler(variant: str, sampler: str) -> None:
    assert type(create(variant).study.sampler).__name__ == sampler


# --------------------------------------------------------------------------- missing packages


def test_missing_optuna_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert backend.missing("tpe") == 'optuna is not installed: pip install "pytest-exp[optuna]"'
    with pytest.raises(ModuleNotFoundError) as e:
        create("tpe")
    assert str(e.value) == 'optuna is not installed: pip install "pytest-exp[optuna]"'
    assert e.value.name == "optuna"


def test_gp_without_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    message = "optuna:gp needs torch (about 900 MB with its CUDA packages): pip install torch"
    assert backend.missing("gp") == message
    assert backend.missing("tpe") is None
    with pytest.raises(ModuleNotFoundError) as e:
        create("gp")
    assert str(e.value) == message
    assert e.value.name == "torch"


# --------------------------------------------------------------------------- points


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_points_are_inside_the_space_and_plain(variant: str) -> None:
    points = run(study_of(create(variant)), 30)
    for p in points:
        assert_inside(p)
    assert len({repr(p) for p in points}) == 30


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_the_same_seed_gives_the_same_points(variant: str) -> None:
    first = run(study_of(create(variant, seed=3)), 15)
    assert run(study_of(create(variant, seed=3)), 15) == first
    assert run(study_of(create(variant, seed=4)), 15) != first


def test_a_fixed_space_asks_its_values_and_keeps_no_trials() -> None:
    opt = create("tpe", s=Space.from_dict({"a": 1, "b": {"type": "value", "value": [1, 2]}}))
    assert opt.ask() == {"a": 1, "b": [1, 2]}
    opt.tell([{"a": 1, "b": [1, 2]}], [0.5])
    assert opt.study.trials == []


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_64_bit_int_bounds_are_searched_under_warnings_as_errors(variant: str) -> None:
    # TPE's numpy warns (log1p of 0) on int ranges wider than 2**51; the points are fine.
    s = Space.from_dict({"n": {"type": "range", "bounds": [-(2**63) + 1, 2**63 - 1], "dtype": "int"}})
    backend.check(s)
    st = study_of(create(variant, s=s))
    for i in range(15):
        p = st.ask(i)
        assert type(p["n"]) is int
        assert -(2**63) + 1 <= p["n"] <= 2**63 - 1
        st.tell(i, abs(p["n"]) / 2**63)


def test_nothing_is_logged_and_the_verbosity_is_restored(caplog: pytest.LogCaptureFixture) -> None:
    run(study_of(create("cmaes")), 12)  # CMA-ES would warn that lists are sampled at random
    run(study_of(create("qmc")), 3)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("optuna")] == []
    assert optuna.logging.get_verbosity() == logging.INFO


def test_qmc_is_scrambled_so_each_seed_has_its_sequence() -> None:
    # The first trial is drawn at random; unscrambled Sobol points after it are the same for every seed.
    s = Space.from_dict({"a": {"type": "range", "bounds": [0, 1]}, "b": {"type": "range", "bounds": [0, 1]}})
    first, second = (run(study_of(create("qmc", seed, s)), 4) for seed in (0, 1))
    assert all(p != q for p, q in zip(first[1:], second[1:], strict=True))


# --------------------------------------------------------------------------- pending points


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_pending_points_are_running_trials_and_not_proposed_again(variant: str) -> None:
    opt = create(variant)
    st = study_of(opt)
    run(st, 12)
    pending = [st.ask(i) for i in range(12, 17)]  # each asked with those before it pending
    assert len({repr(p) for p in pending}) == 5
    running = [t for t in opt.study.trials if t.state == TrialState.RUNNING]
    assert [as_point(t.params) for t in running] == pending
    for i, p in enumerate(pending, start=12):
        st.tell(i, loss(p))
    assert [t.state for t in opt.study.trials] == [TrialState.COMPLETE] * 17
    assert [t.value for t in opt.study.trials] == [loss(as_point(t.params)) for t in opt.study.trials]


def test_tpe_sees_pending_points_as_optuna_sees_running_trials() -> None:
    # A direct loop that leaves two trials running while it asks a third.
    direct = direct_study(backend.sampler("tpe", 5))  # as ours: a constant liar
    for _ in range(12):
        t = direct.ask(DIRECT)
        direct.tell(t, loss(t.params))
    a, b, c = (direct.ask(DIRECT) for _ in range(3))
    st = study_of(create("tpe", seed=5))
    run(st, 12)
    ours = [st.ask(i) for i in (12, 13, 14)]
    assert ours == [as_point(t.params) for t in (a, b, c)]


def test_a_pending_point_not_asked_here_is_held_as_a_running_trial() -> None:
    # A worker's point from another proposer (not one this optimizer handed out).
    opt = create("tpe", seed=2)
    history = run(study_of(create("tpe", seed=9)), 12)
    opt.tell(history, [loss(p) for p in history])
    foreign = run(study_of(create("random", seed=1)), 1)[0]
    p = opt.ask([foreign])
    assert opt.ask([foreign, p]) != p
    assert [as_point(t.params) for t in opt.study.trials if t.state == TrialState.RUNNING] == [
        foreign,
        p,
        as_point(opt.study.trials[-1].params),
    ]
    opt.tell([foreign], [1.5])
    assert opt.study.trials[12].state == TrialState.COMPLETE
    assert opt.study.trials[12].value == 1.5
    assert len(opt.study.trials) == 15

    direct = direct_study(optuna.samplers.TPESampler(seed=2))
    for q in history:
        direct.add_trial(create_trial(params=direct_params(q), distributions=DIRECT, value=loss(q)))
    held = create_trial(params=direct_params(foreign), distributions=DIRECT, state=TrialState.RUNNING)
    direct.add_trial(held)
    assert as_point(direct.ask(DIRECT).params) == p


def test_a_point_pending_twice_is_held_twice() -> None:
    opt = create("random")
    p = {"x": 1.0, "lr": 0.01, "layers": 2, "opt": "sgd", "batch": 32, "shape": [3, 4]}
    opt.ask([p, p])
    opt.ask([p, p])
    assert [t.params["x"] for t in opt.study.trials if t.state == TrialState.RUNNING][:2] == [1.0, 1.0]
    assert len(opt.study.trials) == 4


# --------------------------------------------------------------------------- history and failures


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_a_replayed_history_becomes_completed_trials(variant: str) -> None:
    history = run(study_of(create("random", seed=8)), 12)
    opt = create(variant)
    st = study_of(opt)
    st.replay([(i, p, loss(p)) for i, p in enumerate(history)])
    trials = opt.study.trials
    assert [as_point(t.params) for t in trials] == history
    assert [t.value for t in trials] == [loss(p) for p in history]
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    for p in run(st, 5, start=12):
        assert_inside(p)


def test_a_replayed_history_from_the_store_steers_tpe_as_it_steers_optuna() -> None:
    # Points as the store gives them back: JSON, so an array value is a fresh list.
    history = [{**p, "shape": list(p["shape"])} for p in run(study_of(create("random", seed=8)), 12)]
    st = study_of(create("tpe", seed=1))
    st.replay([(i, p, loss(p)) for i, p in enumerate(history)])
    ours = run(st, 5, start=12)
    direct = direct_study(optuna.samplers.TPESampler(seed=1))
    for p in history:
        direct.add_trial(create_trial(params=direct_params(p), distributions=DIRECT, value=loss(p)))
    theirs = []
    for _ in range(5):
        t = direct.ask(DIRECT)
        direct.tell(t, loss(t.params))
        theirs.append(as_point(t.params))
    assert ours == theirs


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_failures_are_told_the_study_failure_value(variant: str) -> None:
    opt = create(variant)
    st = study_of(opt)
    st.ask(0)
    st.tell(0, None)  # no success yet: the trial stays running
    assert [t.state for t in opt.study.trials] == [TrialState.RUNNING]
    st.ask(1)
    st.tell(1, 2.0)
    st.ask(2)
    st.tell(2, 4.0)
    st.ask(3)
    st.tell(3, math.nan)
    assert st.failure_value() == 5.0
    assert [(t.state, t.value) for t in opt.study.trials] == [
        (TrialState.COMPLETE, 3.0),  # 2 + |2| / 2, told once the first success came
        (TrialState.COMPLETE, 2.0),
        (TrialState.COMPLETE, 4.0),
        (TrialState.COMPLETE, 5.0),  # 4 + (4 - 2) / 2
    ]


def test_a_max_objective_is_minimized_negated() -> None:
    opt = create("random")
    st = Study("key", Objective.parse("acc:max"), 5, opt)
    st.ask(0)
    st.tell(0, 0.75)
    assert opt.study.trials[0].value == -0.75


# --------------------------------------------------------------------------- parity


def parity(variant: str, sampler: Any, seed: int) -> None:
    direct = direct_study(sampler)
    theirs = []
    for _ in range(15):
        t = direct.ask(DIRECT)
        p = as_point(t.params)
        direct.tell(t, loss(p))
        theirs.append(p)
    assert run(study_of(create(variant, seed=seed)), 15) == theirs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tpe_evaluates_what_a_direct_optuna_loop_evaluates(seed: int) -> None:
    parity("tpe", optuna.samplers.TPESampler(seed=seed), seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_evaluates_what_a_direct_optuna_loop_evaluates(seed: int) -> None:
    parity("random", optuna.samplers.RandomSampler(seed=seed), seed)


@NEEDS_TORCH
def test_gp_evaluates_what_a_direct_optuna_loop_evaluates() -> None:  # pragma: no cover - torch
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        parity("gp", optuna.samplers.GPSampler(seed=0), 0)
    finally:
        torch.set_num_threads(threads)


@NEEDS_TORCH
def test_gp_restores_the_torch_thread_count() -> None:  # pragma: no cover - torch
    import torch

    threads = torch.get_num_threads()
    run(study_of(create("gp")), 12)
    assert torch.get_num_threads() == threads


# --------------------------------------------------------------------------- check


def test_check_accepts_what_optuna_searches() -> None:
    backend.check(space())
    backend.check(Space.from_dict({"x": {"type": "range", "bounds": [-8e307, 8e307]}}))
    backend.check(
        Space.from_dict({"x": {"type": "random", "bounds": [5e-324, 1.7e308], "prior": "log-uniform"}})
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "range", "bounds": [0, 2**64], "dtype": "int"},
            "mixed.toml: [p] int bounds must be within 64-bit integers to optimize, "
            "+-9,223,372,036,854,775,807 (got [0, 18446744073709551616])",
        ),
        (
            {"type": "random", "bounds": [-(2**63), 0], "dtype": "int"},
            "mixed.toml: [p] int bounds must be within 64-bit integers to optimize, "
            "+-9,223,372,036,854,775,807 (got [-9223372036854775808, 0])",
        ),
        (
            {"type": "range", "bounds": [-1e308, 1e308]},
            "mixed.toml: [p] bounds too wide to optimize: high - low overflows a float "
            "(got [-1e+308, 1e+308])",
        ),
        (
            {"type": "range", "bounds": [0, 1e-310]},
            "mixed.toml: [p] bounds too narrow to optimize: high - low is below 2.2e-308 (got [0, 1e-310])",
        ),
    ],
)
def test_check_refuses_bounds_optuna_cannot_search(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpaceError) as e:
        backend.check(Space.from_dict({"q": 1, "p": spec}, source="mixed.toml"))
    assert str(e.value) == message
    assert (e.value.source, e.value.param) == ("mixed.toml", "p")
