"""The CI example as a user meets it: the committed baseline passes, a real regression fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Imported here, before pytester's in-process runs: those unload what a run imported, and numpy
# refuses to be imported a second time in one process.
pytest.importorskip("numpy")

CI = Path(__file__).parent.parent / "examples" / "ci"


@pytest.fixture
def ci_project(pytester: pytest.Pytester) -> pytest.Pytester:
    for name in ("pytest.ini", "ci.toml", "test_model.py", "baseline.jsonl"):
        shutil.copy(CI / name, pytester.path / name)
    return pytester


def test_the_committed_baseline_passes(ci_project: pytest.Pytester) -> None:
    result = ci_project.runpytest("-n", "2")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(
        ["baseline baseline.jsonl: 8 configurations, 16 verdicts: 16 within (passed)"]
    )


def test_a_slower_learning_rate_is_caught(ci_project: pytest.Pytester) -> None:
    model = ci_project.path / "test_model.py"
    # The kind of bug a refactor brings in: the step is half what the configuration asks for.
    model.write_text(model.read_text().replace("w -= lr * (", "w -= 0.5 * lr * ("))
    result = ci_project.runpytest()
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 8  # the second run of each configuration carries the verdict
    assert outcomes["passed"] == 8
    result.stdout.fnmatch_lines(
        [
            "worse than the baseline baseline.jsonl (mean of 2 runs):",
            "val_loss: * vs baseline * (+*%), worse than allowed (min, 2% or 0.001)",
        ]
    )
