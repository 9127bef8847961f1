"""--exp-optimizer: backends by name, variant, entry point or module:object, and the errors."""

from __future__ import annotations

import json

import pytest

from pytest_exp.store import Store

pytestmark = pytest.mark.usefixtures("warm_skopt")  # see conftest.py

# A third-party backend: proposes the space's points in a fixed order, and says what it was given.
THIRD_PARTY = """
import json
from pathlib import Path

SETTINGS = ()
VARIANTS = ("up", "down")


def check(space):
    pass


class Ladder:
    def __init__(self, space, settings):
        self.values = list(space.params["x"].values)
        if settings["variant"] == "down":
            self.values.reverse()
        self.told = []
        Path("given.json").write_text(json.dumps(settings))

    def ask(self, pending=()):
        taken = [p["x"] for p in pending] + [x for x, _ in self.told]
        return {"x": next(v for v in self.values if v not in taken)}

    def tell(self, points, values):
        self.told += [(p["x"], v) for p, v in zip(points, values)]


def create(space, settings):
    return Ladder(space, settings)


class Backend:  # the same, as an object: module:object names it
    SETTINGS = SETTINGS
    VARIANTS = VARIANTS
    check = staticmethod(check)
    create = staticmethod(create)
"""

TEST = """
import pytest

@pytest.mark.space({"x": [1, 2, 3, 4]}, objective="y")
def test_x(x, record_metric):
    record_metric("y", x)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    needy = (  # a backend that lacks what it needs to run
        "SETTINGS = ()\ncheck = create = None\n\n"
        "def missing(variant=None):\n    return 'moon is not installed: pip install moon'\n"
    )
    # stairs: not registered
    pytester.makepyfile(ladder=THIRD_PARTY, stairs=THIRD_PARTY, needy=needy, test_x=TEST)
    info = pytester.mkdir("ladder-1.0.dist-info")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ladder\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest_exp.optimizers]\nladder = ladder\nneedy = needy\n")
    pytester.syspathinsert()
    return pytester


def tried(pytester: pytest.Pytester) -> list[object]:
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        return [t.params["x"] for run in store.runs() for t in store.trials(run.id)]


@pytest.mark.parametrize(
    ("optimizer", "order", "variant"),
    [("ladder", [1, 2, 3], None), ("ladder:down", [4, 3, 2], "down"), ("stairs:Backend", [1, 2, 3], None)],
)
def test_a_backend_registered_by_entry_point_or_named_as_module_object(
    project: pytest.Pytester, optimizer: str, order: list[int], variant: str | None
) -> None:
    result = project.runpytest("--exp-optimize", "3", "--exp-optimizer", optimizer)
    result.assert_outcomes(passed=3)
    assert tried(project) == order
    assert json.loads((project.path / "given.json").read_text()) == {"seed": 0, "variant": variant}


def test_the_marker_and_the_ini_file_name_a_backend(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nexp_optimizer = ladder:down\n")
    project.runpytest("--exp-optimize", "2").assert_outcomes(passed=2)
    assert tried(project) == [4, 3]
    project.makepyfile(test_x=TEST.replace('objective="y"', 'objective="y", optimizer="ladder:up"'))
    project.runpytest("--exp-optimize", "2", "--exp-fresh").assert_outcomes(passed=2)
    assert tried(project) == [4, 3, 1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--exp-optimizer", "skopt:xx"],
            "optimizer 'skopt:xx': skopt has no variant 'xx' (expected one of gp, rf, et, random)",
        ),
        (
            ["--exp-optimizer", "optuan"],
            "unknown optimizer 'optuan' (expected one of skopt, optuna, random, ladder, needy, a backend "
            "registered in the pytest_exp.optimizers entry-point group, or module:object)",
        ),
        (
            ["--exp-optimizer", "ladder:Nothing"],
            "optimizer 'ladder:Nothing': ladder has no variant 'Nothing' (expected one of up, down)",
        ),
        (["--exp-optimizer", "needy"], "--exp-optimizer needy: moon is not installed: pip install moon"),
        (
            ["--exp-optimizer", "skopt:gp", "--exp-surrogate", "RF"],
            "--exp-surrogate RF conflicts with --exp-optimizer skopt:gp, which means surrogate GP",
        ),
        (
            ["--exp-optimizer", "ladder", "--exp-acq", "LCB"],
            "--exp-acq is a setting of the skopt backend, which --exp-optimizer ladder does not use",
        ),
        (
            ["--exp-optimizer", "skopt:"],
            "argument --exp-optimizer: invalid value 'skopt:': expected NAME[[]:VARIANT[]] (e.g. skopt:gp, "
            "random, optuna:tpe) or module:object",
        ),
    ],
)
def test_a_bad_optimizer_is_a_usage_error(project: pytest.Pytester, args: list[str], message: str) -> None:
    result = project.runpytest("--exp-optimize", "2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        ("nomodule:Thing", "optimizer 'nomodule:Thing': cannot import nomodule (No module named 'nomodule')"),
        ("test_x:pytest", "optimizer 'test_x:pytest': test_x:pytest is not a backend (it has no SETTINGS)"),
        ("stairs:Nothing", "optimizer 'stairs:Nothing': stairs has no 'Nothing'"),
    ],
)
def test_a_module_object_that_is_no_backend_is_a_collection_error(
    project: pytest.Pytester, optimizer: str, message: str
) -> None:
    # Collection puts the test's folder on sys.path: only then can module:object be imported.
    result = project.runpytest("--exp-optimize", "2", "--exp-optimizer", optimizer)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"{message}; used by test_x.py::test_x"])


def test_a_marker_conflict_is_a_collection_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_x=TEST.replace('objective="y"', 'objective="y", optimizer="random", surrogate="GP"')
    )
    result = project.runpytest("--exp-optimize", "2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "surrogate= GP conflicts with --exp-optimizer random, which means surrogate random; "
            "used by test_x.py::test_x"
        ]
    )


@pytest.mark.parametrize("optimizer", ["random", "skopt:random", "skopt:et"])
def test_builtin_variants_run(pytester: pytest.Pytester, optimizer: str) -> None:
    pytester.makepyfile(test_x=TEST)
    pytester.runpytest(
        "--exp-optimize", "3", "--exp-initial-points", "2", "--exp-optimizer", optimizer
    ).assert_outcomes(passed=3)
