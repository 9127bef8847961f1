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
