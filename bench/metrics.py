"""Run-time cost of trials that record metrics, next to plain ``@pytest.mark.parametrize`` tests.

Builds, in a temporary directory, test modules over the same ``--trials`` values of ``a``
(0, 1, ..., trials-1) and runs each in a fresh interpreter with ``pytest -q -p no:cacheprovider``:

* ``baseline``            one trivial test, plugin not loaded: interpreter and pytest start-up;
* ``plain parametrize``   ``@pytest.mark.parametrize("a", range(N))`` with an empty body, run with
                          ``-p no:exp`` so the plugin is not even loaded (the anchor);
* ``floor``               the anchor's module with a ``record_metric`` argument and the three calls,
                          served by a bare ``conftest.py`` (``-p no:exp``): a session fixture that
                          records (handed to the test, with its ``a``, before pytest looks them
                          up, as the plugin does), the metrics on the call report, one journal
                          line per trial. The least a plugin can do for the measured case;
* ``plugin, plain tests`` the same module with the plugin loaded: its per-test hooks alone
                          (no space trial, so no record, no store);
* ``space, no metrics``   ``@pytest.mark.space("space.toml")`` (``a``: int range [0, N)) with an empty
                          body: trial bookkeeping, reports and the store, without metrics;
* ``space + 3 metrics``   the same, each test calling ``record_metric`` three times with values
                          derived from ``a`` (the measured case);
* ``plain -n 2`` and ``space + 3 metrics -n 2``: the anchor and the measured case under xdist
                          with two workers (the controller writes the store).

Each measurement times ``pytest.main`` inside the child (and the subprocess wall time outside
it). The store (``.pytest-exp``) is deleted before every run; after each space run the store is
opened with ``Store.open_existing`` and must hold one finished run of N passed trials, each with
the three metrics equal to what the test recorded from its ``a`` (and, under xdist, written by
both workers). Runs without space trials must leave no store. Every variant must collect the
same values of ``a`` and pass N tests; ``-p no:exp`` must keep the plugin out, the others load it.
Variants are interleaved (rotated order) after one discarded warm-up round; medians are reported, and
the verdict takes the median over rounds of each run's ratio to the anchor's run of the same round.
Children cache bytecode as Python does by default; ``--no-bytecode-cache`` sets PYTHONDONTWRITEBYTECODE=1.

Targets: ``space + 3 metrics`` at most 1.10x the ``pytest.main`` time of plain parametrize without
the plugin, serially and under ``-n 2`` (each against its own anchor), and at most 1.15x the floor's.

    python bench/metrics.py [--trials 2000] [--repeats 20] [--only plain,exp,plain2,exp2] [--no-hypothesis]
                            [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import MODULE, Runs, run_child, verdict, write_project

import pytest_exp
from pytest_exp.store import Store

TARGET = 1.10
FLOOR_TARGET = 1.15  # space + 3 metrics against the bare-conftest floor (issue 14)
STORE = ".pytest-exp"
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider"]
NO_HYPOTHESIS = ("-p", "no:hypothesispytest")
NO_PLUGIN = ("-p", "no:exp")
XDIST = ("-n", "2")
METRICS = ("loss", "acc", "step")
KEYS = ("base", "plain", "floor", "hooks", "space", "exp", "plain2", "exp2")
FLOOR_JOURNAL = "journal.jsonl"

# The least a plugin can do for what the measured case asks: a session fixture that records into
# the running test's dict (handed over, with the test's value of a, before pytest would look them
# up), the metrics on the call report as it is logged, one journal line written per trial (so a
# kill loses nothing). No trial identity, no store, no summary. Its ratio is the target's floor.
FLOOR_CONFTEST = f"""
import json, os

import pytest


class Sink:
    current = None

    def __call__(self, name, value):
        self.current.setdefault(name, []).append(value)


SINK = Sink()
JOURNAL = os.open({FLOOR_JOURNAL!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


@pytest.fixture(scope="session")
def record_metric():
    return SINK


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    SINK.current = {{}}
    # As the plugin does: hand the values over before pytest looks them up (about 50 us each).
    item.funcargs["record_metric"] = SINK
    item.funcargs["a"] = item.callspec.params["a"]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    # As the plugin does: the report is the running test's, and no report wrapper (pluggy's
    # wrapper protocol costs more than the work).
    if report.when == "call":
        report.metrics = SINK.current
        os.write(JOURNAL, (json.dumps([report.nodeid, SINK.current]) + "\\n").encode())
"""

# Runs in the child interpreter: times pytest.main, then digests what was collected and what passed
# (after the measurement), so the variants can be compared.
CHILD = textwrap.dedent(
    """
    import hashlib, json, sys, time

    import pytest

    class Probe:
        items = []
        passed = []
        exp_loaded = None

        def pytest_configure(self, config):
            self.exp_loaded = config.pluginmanager.hasplugin("exp")

        def pytest_collection_finish(self, session):
            self.items = session.items

        def pytest_runtest_logreport(self, report):
            if report.when == "call" and report.passed:
                self.passed.append(report.nodeid)

    probe = Probe()
    t0 = time.perf_counter()
    rc = pytest.main(sys.argv[2:], plugins=[probe])
    t1 = time.perf_counter()

    # Under xdist the controller collects nothing: items stays empty and only the reports count.
    values = sorted(item.callspec.params["a"] for item in probe.items if hasattr(item, "callspec"))
    result = {
        "rc": int(rc),
        "main_s": t1 - t0,
        "exp_loaded": probe.exp_loaded,
        "items": len(probe.items),
        "values": hashlib.sha256(repr(values).encode()).hexdigest(),
        "passed": len(probe.passed),
        "nodeids": hashlib.sha256("\\n".join(sorted(probe.passed)).encode()).hexdigest(),
    }
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
    """
)


def expected_metrics(a: int, trials: int) -> dict[str, list[float | int]]:
    """What the measured test records for ``a`` (the store must give back exactly this)."""
    return {"loss": [a * 0.5], "acc": [a / trials], "step": [a]}


@dataclass
class Variant(Runs):
    key: str
    label: str
    directory: Path
    args: tuple[str, ...]
    anchor: str | None  # key of the variant this one is compared with
    stores: bool  # whether the run must leave a store of space trials
    metrics: bool  # whether those trials recorded metrics
    workers: bool  # xdist

    @property
    def plugin(self) -> bool:
        return NO_PLUGIN[1] not in self.args


# --------------------------------------------------------------------------- workspace


def build(root: Path, trials: int) -> list[Variant]:
    toml = f'[a]\ntype = "range"\nbounds = [0, {trials}]\ndtype = "int"\n'
    plain = write_project(
        root,
        "plain",
        f'import pytest\n\n\n@pytest.mark.parametrize("a", range({trials}))\ndef test_a(a):\n    pass\n',
    )
    space = write_project(
        root,
        "space",
        'import pytest\n\n\n@pytest.mark.space("space.toml")\ndef test_a(a):\n    pass\n',
        {"space.toml": toml},
    )
    body = "".join(
        f"    record_metric({n!r}, {e})\n"
        for n, e in zip(METRICS, ("a * 0.5", f"a / {trials}", "a"), strict=True)
    )
    exp = write_project(
        root,
        "exp",
        f'import pytest\n\n\n@pytest.mark.space("space.toml")\ndef test_a(a, record_metric):\n{body}',
        {"space.toml": toml},
    )
    floor = write_project(
        root,
        "floor",
        f'import pytest\n\n\n@pytest.mark.parametrize("a", range({trials}))\n'
        f"def test_a(a, record_metric):\n{body}",
        {"conftest.py": FLOOR_CONFTEST},
    )
    base = write_project(root, "base", "def test_a():\n    pass\n")
    return [
        Variant("base", "baseline (1 test)", base, NO_PLUGIN, None, False, False, False),
        Variant("plain", "plain parametrize", plain, NO_PLUGIN, None, False, False, False),
        Variant("floor", "floor (bare conftest)", floor, NO_PLUGIN, "plain", False, True, False),
        Variant("hooks", "plugin, plain tests", plain, (), "plain", False, False, False),
        Variant("space", "space, no metrics", space, (), "plain", True, False, False),
        Variant("exp", "space + 3 metrics", exp, (), "plain", True, True, False),
        Variant("plain2", "plain -n 2", plain, (*NO_PLUGIN, *XDIST), None, False, False, True),
        Variant("exp2", "space + metrics -n 2", exp, XDIST, "plain2", True, True, True),
    ]


# --------------------------------------------------------------------------- measuring


def command(variant: Variant) -> list[str]:
    return [*PYTEST_ARGS, *variant.args, MODULE]


# The children's environment: by default Python's own, which caches bytecode (the warm-up round
# writes it); --no-bytecode-cache sets PYTHONDONTWRITEBYTECODE=1, as many Docker images do.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(variant: Variant, result: Path, trials: int) -> dict[str, Any]:
    store = variant.directory / STORE
    shutil.rmtree(store, ignore_errors=True)  # every run starts with no store
    journal = variant.directory / FLOOR_JOURNAL
    journal.unlink(missing_ok=True)
    run = run_child(CHILD, result, command(variant), variant.directory, variant.label, CHILD_ENV)
    check_store(variant, store, trials)
    if variant.key == "floor":
        check_floor(variant, journal, trials)
    shutil.rmtree(store, ignore_errors=True)
    return run


def check_floor(variant: Variant, journal: Path, trials: int) -> None:
    """The floor's journal: one line per trial with the metrics its test recorded."""
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    got = sorted((int(nodeid.rpartition("[")[2][:-1]), metrics) for nodeid, metrics in lines)
    want = [(a, expected_metrics(a, trials)) for a in range(trials)]
    if got != want:
        raise SystemExit(f"{variant.label}: its journal does not hold the {trials} trials' metrics")


def check_store(variant: Variant, store: Path, trials: int) -> None:
    """The store a run left: N passed trials with their metrics, or none at all."""
    if not variant.stores:
        if store.exists():
            raise SystemExit(f"{variant.label}: left a store at {store}, expected none")
        return
    with Store.open_existing(store) as s:
        runs = s.runs()
        if len(runs) != 1 or runs[0].trials != trials or runs[0].status != "finished":
            shown = [(r.id, r.trials, r.status) for r in runs]
            raise SystemExit(
                f"{variant.label}: store holds runs {shown}, expected one finished run of {trials}"
            )
        records = s.trials(runs[0].id)
    seen = sorted(r.params["a"] for r in records)
    if seen != list(range(trials)):
        raise SystemExit(f"{variant.label}: stored trials do not cover a = 0..{trials - 1} once each")
    for r in records:
        want = expected_metrics(r.params["a"], trials) if variant.metrics else {}
        if r.status != "passed" or r.metrics != want:
            raise SystemExit(
                f"{variant.label}: trial {r.test} stored {r.status} {r.metrics}, expected {want}"
            )
    workers = {r.worker for r in records}
    if workers != ({"gw0", "gw1"} if variant.workers else {"main"}):
        raise SystemExit(f"{variant.label}: trials written by workers {sorted(workers)}")


def check(variants: dict[str, Variant], trials: int) -> None:
    values = hashlib.sha256(repr(list(range(trials))).encode()).hexdigest()
    for v in variants.values():
        n = 1 if v.key == "base" else trials
        for r in v.runs:
            if r["exp_loaded"] != v.plugin:
                raise SystemExit(f"{v.label}: plugin loaded = {r['exp_loaded']}, expected {v.plugin}")
            if r["passed"] != n:
                raise SystemExit(f"{v.label}: {r['passed']} tests passed, expected {n}")
            if v.key != "base" and not v.workers and (r["items"] != n or r["values"] != values):
                raise SystemExit(f"{v.label}: collected {r['items']} items, not a = 0..{trials - 1}")
    # The same tests passed in every run of a module, with or without the plugin, serially or not.
    for keys in (("plain", "floor", "hooks", "plain2"), ("exp", "exp2")):
        runs = [(variants[k].label, r["nodeids"]) for k in keys if k in variants for r in variants[k].runs]
        if len({digest for _, digest in runs}) > 1:
            raise SystemExit(
                f"{' / '.join(dict.fromkeys(label for label, _ in runs))}: passed different tests"
            )


# --------------------------------------------------------------------------- report


def report(variants: dict[str, Variant], trials: int, repeats: int, seconds: float) -> None:
    print(
        f"pytest-exp metrics benchmark: {trials:,} trials x {len(METRICS)} metrics, median of {repeats} "
        f"interleaved run(s) after 1 warm-up round ({seconds:.0f} s in all)"
    )
    print(
        f"Python {platform.python_version()}, pytest {pytest.__version__}, "
        f"pytest-exp {pytest_exp.__version__}, {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"each run: python -c <wrapper> {' '.join(PYTEST_ARGS)} [-p no:exp] [-n 2] {MODULE}"
        " (fresh interpreter)"
    )
    cached = "PYTHONDONTWRITEBYTECODE" not in CHILD_ENV
    print(
        "bytecode: cached (Python's default; --no-bytecode-cache to compile every run)"
        if cached
        else "bytecode: PYTHONDONTWRITEBYTECODE=1 (pytest compiles each plugin module no earlier run cached)"
    )
    print()
    header = (
        f"{'':<22} {'main s':>8} {'vs anchor':>10} {'paired':>8} {'extra s':>8} {'us/trial':>9} {'wall s':>8}"
    )
    print(header)
    print("-" * len(header))
    for v in variants.values():
        main_s = v.median("main_s")
        row = f"{v.label:<22} {main_s:>8.3f}"
        if v.anchor in variants:
            anchor_s = variants[v.anchor or ""].median("main_s")
            extra = main_s - anchor_s
            paired = v.paired("main_s", variants[v.anchor or ""])
            row += f" {main_s / anchor_s:>9.3f}x {paired:>7.3f}x {extra:>+8.3f} {extra / trials * 1e6:>+9.0f}"
        else:
            shown = "(anchor)" if v.anchor is None and v.key != "base" else ""
            row += f" {shown:>10} {'':>8} {'':>8} {'':>9}"
        print(f"{row} {v.median('wall_s'):>8.3f}")
    print()
    print("spread (min..max of main s over the runs):")
    for v in variants.values():
        t0, t1 = v.spread("main_s")
        print(f"  {v.label:<22} {t0:.3f}..{t1:.3f}")
    print()
    print(
        "main s = time in pytest.main (median); vs anchor = ratio of medians; paired = median over rounds"
        " of the ratio to the anchor's run in the same round (the verdict's figure); extra s = main s"
        " minus the anchor's; us/trial = extra s per trial"
    )
    print("anchors: plain parametrize with -p no:exp (serial rows), plain -n 2 with -p no:exp (-n 2 rows)")
    for key in ("floor", "exp", "exp2"):  # the floor's line: what the least possible plugin gets
        measured = variants.get(key)
        a = variants.get(measured.anchor or "") if measured is not None else None
        if measured is not None and a is not None:
            print(
                f"  {measured.label:<22} vs {a.label:<18} "
                + verdict("time", measured.paired("main_s", a), 1.0, TARGET)
                + f"  (ratio of medians {measured.median('main_s') / a.median('main_s'):.3f}x,"
                f" of fastest runs {measured.spread('main_s')[0] / a.spread('main_s')[0]:.3f}x)"
            )
    exp, floor = variants.get("exp"), variants.get("floor")
    if exp is not None and floor is not None:  # the same rounds: paired like the lines above
        print(
            f"  {exp.label:<22} vs {floor.label:<18} "
            + verdict("time", exp.paired("main_s", floor), 1.0, FLOOR_TARGET)
            + f"  (ratio of medians {exp.median('main_s') / floor.median('main_s'):.3f}x,"
            f" of fastest runs {exp.spread('main_s')[0] / floor.spread('main_s')[0]:.3f}x)"
        )
    xdist = ", from gw0 and gw1 under -n 2" if any(v.workers and v.stores for v in variants.values()) else ""
    print(
        f"  (checked: {trials:,} tests passed in every variant, equal values of a; each space run's store "
        f"held one finished run of {trials:,} passed trials with the recorded metrics{xdist}; no store "
        "without space trials; -p no:exp kept the plugin out; the floor journaled every trial's metrics)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000, help="tests (trials) per run")
    parser.add_argument("--repeats", type=int, default=20, help="measured rounds (median reported)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run every child with PYTHONDONTWRITEBYTECODE=1, as many Docker images do (shows the"
        " compile cost in a fresh install, where no run has cached pytest's rewritten modules)",
    )
    parser.add_argument(
        "--no-hypothesis",
        action="store_true",
        help="add -p no:hypothesispytest to every run (what a venv without hypothesis starts like)",
    )
    parser.add_argument("--only", help="comma-separated variant keys (" + ", ".join(KEYS) + "); default: all")
    args = parser.parse_args(argv)
    only = KEYS if args.only is None else tuple(k.strip() for k in args.only.split(","))
    unknown = sorted(set(only) - set(KEYS))
    if unknown:
        parser.error(f"--only: unknown variant(s) {', '.join(unknown)} (expected some of {', '.join(KEYS)})")
    if args.trials < 2:
        parser.error("--trials must be >= 2")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    if args.no_hypothesis:
        PYTEST_ARGS.extend(NO_HYPOTHESIS)
    if args.no_bytecode_cache:
        CHILD_ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="exp-bench-") as tmp:
        root = Path(tmp)
        order = [v for v in build(root, args.trials) if v.key in only]
        result = root / "result.json"
        for v in order:  # warm-up round, discarded: fills the page cache, settles the machine
            measure(v, result, args.trials)
        for r in range(args.repeats):
            shift = r % len(order)
            for v in order[shift:] + order[:shift]:
                v.runs.append(measure(v, result, args.trials))
        variants = {v.key: v for v in order}
        check(variants, args.trials)
    report(variants, args.trials, args.repeats, time.perf_counter() - started)


if __name__ == "__main__":
    main()
