"""What the benchmarks share: a project folder per variant, medians of runs, target verdicts."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
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

    def paired(self, metric: str, anchor: Runs) -> float:
        """The median over rounds of this variant's figure divided by the anchor's in the same
        round: runs of one round are seconds apart, so a slow phase of the machine weighs on both."""
        pairs = zip(self.runs, anchor.runs, strict=True)
        return statistics.median(float(r[metric]) / float(a[metric]) for r, a in pairs)

    def spread(self, metric: str) -> tuple[float, float]:
        values = [float(r[metric]) for r in self.runs]
        return min(values), max(values)


def verdict(name: str, value: float, anchor: float, target: float) -> str:
    r = value / anchor
    return f"{name} {r:.3f}x (target <= {target:.2f}x): {'OK' if r <= target else 'OVER'}"


def run_child(
    child: str,
    result: Path,
    args: Sequence[str],
    directory: Path,
    label: str,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``python -c child result *args`` in ``directory`` (with ``env``, or this process's
    environment): the child runs pytest with ``args`` and writes its own figures to ``result`` as
    JSON; ``wall_s`` is added. A failed run stops the benchmark with pytest's own output."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", child, str(result), *args],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0 or not result.exists():
        raise SystemExit(f"{label}: child failed ({done.returncode}):\n{done.stderr.decode()}")
    run: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    if run["rc"] != 0:
        # Output goes to /dev/null while measuring; run again to show what went wrong.
        again = subprocess.run(
            [sys.executable, "-m", "pytest", *args],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        tail = "\n".join((again.stdout + again.stderr).splitlines()[-30:])
        raise SystemExit(f"{label}: pytest exited {run['rc']}:\n{tail}")
    run["wall_s"] = wall
    return run


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], first: int = 14) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths[0] = max(widths[0], first)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    head = line(header)
    return [head, "-" * len(head), *(line(r) for r in rows)]
