"""What the benchmarks share: a project folder per variant, medians of runs, target verdicts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODULE = "test_bench.py"


def write_project(root: Path, name: str, module: str, extra: dict[str, str] | None = None) -> Path:
    """``root/name`` holding a pytest.ini (which pins the rootdir, and so the store, there), the
    test module and any ``extra`` files."""
    directory = root / name
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / MODULE).write_text(module)
    for filename, text in (extra or {}).items():
        (directory / filename).write_text(text)
    return directory


@dataclass
class Runs:
    """The measurements of one variant: a dict per run."""

    runs: list[dict[str, Any]] = field(default_factory=list, kw_only=True)

    def median(self, metric: str) -> float:
        return statistics.median(float(r[metric]) for r in self.runs)

    def spread(self, metric: str) -> tuple[float, float]:
        values = [float(r[metric]) for r in self.runs]
        return min(values), max(values)


def verdict(name: str, value: float, anchor: float, target: float) -> str:
    r = value / anchor
    return f"{name} {r:.3f}x (target <= {target:.2f}x): {'OK' if r <= target else 'OVER'}"
