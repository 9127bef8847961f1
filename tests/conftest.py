from __future__ import annotations

import pytest


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # Hypothesis' pytest plugin imports all of hypothesis at the end of every inner run (pytester
    # restores sys.modules between runs): a second per run. Set after pytester clears the variable.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    return pytester


@pytest.fixture(scope="session")
def warm_skopt() -> None:
    """Inner pytester runs drop the modules they imported, and numpy's and scikit-learn's compiled
    modules cannot be loaded twice in a process: a study run once here keeps them loaded."""
    from pytest_exp.space import Space
    from pytest_exp.study import skopt as backend
    from pytest_exp.study.study import Study

    space = Space.from_dict({"x": {"type": "range", "bounds": [0, 1]}, "k": ["a", "b"]})
    for surrogate in ("GP", "RF", "ET", "random"):
        study = Study("warm", None, 3, backend.create(space, {"surrogate": surrogate, "initial_points": 1}))
        for i in range(3):
            study.tell(i, study.ask(i)["x"])


@pytest.fixture(scope="session")
def warm_optuna() -> None:
    """As warm_skopt, for the Optuna backends: QMC's scipy modules, cmaes (which CMA-ES imports
    only once two real dimensions have a first trial) and, where installed, torch for optuna:gp
    cannot be loaded twice in a process. Skips where Optuna is not installed."""
    pytest.importorskip("optuna")
    from pytest_exp.space import Space
    from pytest_exp.study import optuna as backend

    real = {"type": "range", "bounds": [0, 1]}
    space = Space.from_dict({"x": real, "y": real, "k": ["a", "b"]})
    variants = ["tpe", "cmaes", "qmc", "random", "nsga2"] + (["gp"] if backend.missing("gp") is None else [])
    for variant in variants:
        opt = backend.create(space, {"seed": 0, "variant": variant})
        for _ in range(5):
            opt.tell([point := opt.ask()], [point["x"]])
