"""Collection cost of ``@pytest.mark.space`` next to plain ``@pytest.mark.parametrize``.

Builds, in a temporary directory, one grid of ``--points`` points (``x``: int range of
points/100 values, ``lr``: 10 log-uniform draws, ``opt``: 10 strings) and four test modules:

* ``baseline``          one unparametrized test: interpreter, pytest and plugin start-up;
* ``plain parametrize`` the same points, with equal values (checked against ``Space.grid(0)``,
                        and again on what pytest collected), in
                        ``@pytest.mark.parametrize("x,lr,opt", POINTS)`` with pytest's own ids;
* ``plain + exp ids``   the same, with ``ids=`` equal to the plugin's ids (a second anchor: the
                        plugin builds readable ``x=..-lr=..-opt=..`` ids, which cost memory);
* ``pytest-exp marker`` ``@pytest.mark.space("space.toml")``.

The plain modules build ``POINTS`` (and ``IDS``) with ``itertools.product`` from per-parameter
literals, as one would by hand, rather than spelling out every point: a 10,000-tuple literal is
compiled on every run when no ``.pyc`` is written (``PYTHONDONTWRITEBYTECODE``), which would make
the anchor slower and bigger than plain parametrize itself is.

Each measurement is ``pytest --collect-only -q -p no:cacheprovider`` in a fresh interpreter that
reports its own peak RSS (``ru_maxrss``) and the time spent in ``pytest.main``. Variants are
interleaved (rotated order) after one discarded warm-up round; medians are reported.

Targets (plugin vs plain parametrize): collection time <= 1.15x and memory <= 1.1x, where time is
the in-process ``pytest.main`` time and memory is the peak RSS above the baseline (what the
collected items hold). Raw peak RSS and subprocess wall time are printed too.

    python bench/expansion.py [--points 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import MODULE, Runs, run_child, verdict, write_project

import pytest_exp
from pytest_exp import Space
from pytest_exp.space import format_values

TIME_TARGET = 1.15
MEMORY_TARGET = 1.10
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam", "lamb", "lion", "sophia")
PYTEST_ARGS = ("--collect-only", "-q", "-p", "no:cacheprovider", "--exp-seed", "0")

# Runs in the child interpreter: times pytest.main, reads its own peak RSS before anything else
# allocates, then digests what was collected (after the measurement) so variants can be compared.
CHILD = textwrap.dedent(
    """
    import hashlib, json, resource, sys, time

    import pytest

    class Probe:
        items = []

        def pytest_collection_finish(self, session):
            self.items = session.items

    probe = Probe()
    t0 = time.perf_counter()
    rc = pytest.main(sys.argv[2:], plugins=[probe])
    t1 = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    ids, values = hashlib.sha256(), hashlib.sha256()
    for item in probe.items:
        ids.update(item.nodeid.encode() + b"\\n")
        params = item.callspec.params if hasattr(item, "callspec") else {}
        values.update(repr(tuple(params.get(n) for n in ("x", "lr", "opt"))).encode() + b"\\n")
    result = {
        "rc": int(rc),
        "main_s": t1 - t0,
        "peak_kb": peak_kb,
        "items": len(probe.items),
        "ids": ids.hexdigest(),
        "values": values.hexdigest(),
    }
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
    """
)


@dataclass
class Variant(Runs):
    key: str
    label: str
    directory: Path


# --------------------------------------------------------------------------- workspace


def space_toml(points: int) -> str:
    return textwrap.dedent(
        f"""\
        [x]
        type = "range"
        bounds = [0, {points // 100}]
        dtype = "int"

        [lr]
        type = "random"
        bounds = [1e-5, 1e-1]
        prior = "log-uniform"
        n = 10

        [opt]
        type = "list"
        value = {json.dumps(list(OPTIMIZERS))}
        """
    )


def literal(values: Sequence[object]) -> str:
    """A Python list literal (repr round-trips ints, floats and strings)."""
    return "[" + ", ".join(repr(v) for v in values) + "]"


def build(root: Path, points: int) -> list[Variant]:
    toml = space_toml(points)
    (root / "space.toml").write_text(toml)
    grid = Space.from_file(root / "space.toml").grid(0)
    if len(grid) != points:
        raise SystemExit(f"space has {len(grid)} points, expected {points}")
    # The grid is the product of its parameters' values in file order, last fastest, so the plain
    # modules build POINTS and IDS with itertools.product from short literals: equal values (checked
    # here and again on what pytest collected), and no 10,000-element literal for Python to compile
    # in every run (with PYTHONDONTWRITEBYTECODE set no .pyc is cached, so that would tax the anchor).
    values = [list(v) for v in grid.values]
    labels = [[f"{n}={t}" for t in format_values(v)] for n, v in zip(grid.names, grid.values, strict=True)]
    if list(itertools.product(*values)) != [tuple(p.values()) for p in grid]:
        raise SystemExit("itertools.product does not reproduce the grid's points")
    if ["-".join(p) for p in itertools.product(*labels)] != [grid.label(i) for i in range(points)]:
        raise SystemExit("itertools.product does not reproduce the grid's ids")
    head = "import itertools\n\nimport pytest\n\n"
    points_src = "".join(f"{n.upper()} = {literal(v)}\n" for n, v in zip(grid.names, values, strict=True))
    points_src += f"POINTS = list(itertools.product({', '.join(n.upper() for n in grid.names)}))\n"
    ids_src = "".join(f"{n.upper()}_IDS = {literal(v)}\n" for n, v in zip(grid.names, labels, strict=True))
    ids_src += (
        'IDS = ["-".join(p) for p in itertools.product('
        + ", ".join(f"{n.upper()}_IDS" for n in grid.names)
        + ")]\n"
    )
    test = "def test_a(x, lr, opt):\n    pass\n"
    return [
        Variant("base", "baseline (1 test)", write_project(root, "base", "def test_a():\n    pass\n")),
        Variant(
            "plain",
            "plain parametrize",
            write_project(
                root,
                "plain",
                f'{head}{points_src}\n\n@pytest.mark.parametrize("x,lr,opt", POINTS)\n{test}',
            ),
        ),
        Variant(
            "ids",
            "plain + exp ids",
            write_project(
                root,
                "ids",
                f"{head}{points_src}{ids_src}\n\n"
                f'@pytest.mark.parametrize("x,lr,opt", POINTS, ids=IDS)\n{test}',
            ),
        ),
        Variant(
            "exp",
            "pytest-exp marker",
            write_project(
                root, "exp", f'{head}\n@pytest.mark.space("space.toml")\n{test}', {"space.toml": toml}
            ),
        ),
    ]


# --------------------------------------------------------------------------- measuring


def measure(variant: Variant, result: Path) -> dict[str, Any]:
    run = run_child(CHILD, result, [*PYTEST_ARGS, MODULE], variant.directory, variant.label)
    run["peak_mb"] = run["peak_kb"] / 1024
    return run


def check(variants: dict[str, Variant], points: int) -> None:
    plain, ids, exp = variants["plain"], variants["ids"], variants["exp"]
    for v in (plain, ids, exp):
        if {r["items"] for r in v.runs} != {points}:
            raise SystemExit(f"{v.label}: collected {sorted({r['items'] for r in v.runs})}, not {points}")
    if len({v.runs[0]["values"] for v in (plain, ids, exp)}) != 1:
        raise SystemExit("the variants collected different parameter values")
    if ids.runs[0]["ids"] != exp.runs[0]["ids"]:
        raise SystemExit("plain + exp ids did not collect the plugin's node ids")


# --------------------------------------------------------------------------- report


def ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.3f}x" if anchor > 0 else "n/a"


def table(
    title: str,
    variants: Sequence[Variant],
    columns: Sequence[tuple[str, Callable[[Variant], float], str]],
    anchors: Sequence[Variant],
) -> list[str]:
    """One row per variant; each column is followed by its ratio against each anchor."""
    header = f"{title:<20}"
    for name, _, _ in columns:
        header += f" {name:>13}" + "".join(f" {'vs ' + a.key:>9}" for a in anchors)
    lines = [header, "-" * len(header)]
    for v in variants:
        row = f"{v.label:<20}"
        for _, get, fmt in columns:
            row += f" {get(v):>13{fmt}}"
            row += "".join(f" {ratio(get(v), get(a)) if v.key != 'base' else '':>9}" for a in anchors)
        lines.append(row)
    return lines


def report(variants: dict[str, Variant], points: int, repeats: int, seconds: float) -> None:
    base = variants["base"]
    base_mb = base.median("peak_mb")
    base_s = base.median("main_s")
    order = [variants[k] for k in ("base", "plain", "ids", "exp")]
    anchors = [variants["plain"], variants["ids"]]

    def main_s(v: Variant) -> float:
        return v.median("main_s")

    def above_s(v: Variant) -> float:
        return v.median("main_s") - base_s

    def wall_s(v: Variant) -> float:
        return v.median("wall_s")

    def peak_mb(v: Variant) -> float:
        return v.median("peak_mb")

    def above_mb(v: Variant) -> float:
        return v.median("peak_mb") - base_mb

    print(
        f"pytest-exp collection benchmark: {points:,} points, median of {repeats} interleaved run(s) "
        f"after 1 warm-up round ({seconds:.0f} s in all)"
    )
    print(
        f"Python {platform.python_version()}, pytest {pytest.__version__}, "
        f"pytest-exp {pytest_exp.__version__}, {platform.machine()} {platform.system()}"
    )
    print(f"each run: python -c <wrapper> {' '.join(PYTEST_ARGS)} {MODULE}  (fresh interpreter)")
    print("anchors: plain = plain parametrize (pytest's ids), ids = plain parametrize with the plugin's ids")
    print()
    print(
        "\n".join(
            table(
                "time",
                order,
                [("collect s", main_s, ".3f"), ("above base s", above_s, ".3f"), ("wall s", wall_s, ".3f")],
                anchors,
            )
        )
    )
    print()
    print(
        "\n".join(
            table(
                "memory",
                order,
                [("peak MB", peak_mb, ".1f"), ("above base MB", above_mb, ".1f")],
                anchors,
            )
        )
    )
    print()
    print("spread (min..max over the runs):")
    for v in order:
        (t0, t1), (m0, m1) = v.spread("main_s"), v.spread("peak_mb")
        print(f"  {v.label:<20} collect {t0:.3f}..{t1:.3f} s   peak {m0:.1f}..{m1:.1f} MB")
    print()
    print("collect s = time in pytest.main; above base = minus the baseline's median; MB = MiB of RSS")
    print("targets apply to collect s and to peak MB above base (memory held by the expansion):")
    exp = variants["exp"]
    for anchor in anchors:
        print(
            f"  vs {anchor.label:<18} "
            + verdict("time", main_s(exp), main_s(anchor), TIME_TARGET)
            + "; "
            + verdict("memory", above_mb(exp), above_mb(anchor), MEMORY_TARGET)
        )
    print(
        f"  (raw peak vs plain parametrize: {ratio(peak_mb(exp), peak_mb(variants['plain']))}; "
        f"items {points:,} in every variant, equal values, plugin ids == explicit ids: checked)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000, help="grid size, a multiple of 100")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds (median reported)")
    args = parser.parse_args(argv)
    if args.points < 100 or args.points % 100:
        parser.error("--points must be a positive multiple of 100")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="exp-bench-") as tmp:
        root = Path(tmp)
        order = build(root, args.points)
        result = root / "result.json"
        for v in order:  # warm-up round, discarded: fills the page cache, settles the machine
            measure(v, result)
        for r in range(args.repeats):
            shift = r % len(order)
            for v in order[shift:] + order[:shift]:
                v.runs.append(measure(v, result))
        variants = {v.key: v for v in order}
        check(variants, args.points)
    report(variants, args.points, args.repeats, time.perf_counter() - started)


if __name__ == "__main__":
    main()
